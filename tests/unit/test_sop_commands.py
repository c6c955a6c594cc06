"""Commands built from steps: scripts quote everything; host rows aggregate into a step result."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from smallyi.sop.context import host_result, merge_host_results
from smallyi.sop.steps.commands import script_command


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10)


def test_script_command_passes_script_and_args_intact() -> None:
    """The script and its arguments arrive as written, quotes and all."""
    cmd = script_command('echo "$1|$2"; echo \'single\'', "sh", ["a b", "it's"])
    r = sh(cmd)
    assert r.stdout.splitlines() == ["a b|it's", "single"]
    assert shlex.split(script_command("true", "bash -e"))[:3] == ["bash", "-e", "-c"]


def test_host_results_aggregate_and_merge() -> None:
    """Outputs join in host order; ok/failed hosts are listed; a retry's hosts replace the failed ones."""
    first = host_result([
        {"host": "b", "status": "failed", "exit_code": 1, "stdout": "B", "stderr": "err", "reason": "exit status 1"},
        {"host": "a", "status": "success", "exit_code": 0, "stdout": "A", "stderr": ""},
    ])
    assert first["output"] == "A\nB" and first["ok_hosts"] == ["a"] and first["failed_hosts"] == ["b"]
    assert first["status"] == "failed" and first["exit_code"] == 1
    retry = host_result([{"host": "b", "status": "success", "exit_code": 0, "stdout": "B2", "stderr": ""}])
    merged = merge_host_results(first, retry)
    assert merged["status"] == "success" and merged["output"] == "A\nB2" and merged["exit_code"] == 0



HOSTILE = ["$(touch {m})", "`touch {m}`", '"; touch {m}; echo "', "'; touch {m}; echo '", 'a\\"b$HOME!',
           "it's", "", "x\ny", "{{{{ .vars.x }}}}"]


@pytest.mark.parametrize(("template", "args"), [
    ("printf '%s\\n' {{ .vars.x }}", ["{v}"]),
    ('printf "%s\\n" "{{ .vars.x }}"', ["{v}"]),
    ("printf '%s\\n' '{{ .vars.x }}'", ["{v}"]),
    ("printf '%s\\n' \"v=[{{ .vars.x }}]\"", ["v=[{v}]"]),
    ("printf '%s\\n' 'a{{ .vars.x }}b' \"c{{ .vars.x }}d\" {{ .vars.x }}", ["a{v}b", "c{v}d", "{v}"]),
])
def test_a_value_is_data_wherever_it_lands_in_the_command(template: str, args: list[str], tmp_path: Path) -> None:
    """Unquoted, inside "..." or inside '...', a variable's value reaches the command as itself: sh gets
    it back unchanged as the argument it was written into, and nothing in it runs."""
    from smallyi.sop.expr import compile_template
    from smallyi.sop.steps.commands import shell_value

    marker = tmp_path / "ran"
    for raw in HOSTILE:
        value = raw.format(m=marker)
        cmd = compile_template(template).render({"vars": {"x": value}}, escape_at=shell_value)
        out = sh(cmd).stdout
        assert not marker.exists(), f"{template!r} with {value!r} ran: {cmd!r}"
        assert out == "".join(a.replace("{v}", value) + "\n" for a in args), (template, value, cmd, out)
