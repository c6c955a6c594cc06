"""Commands built from steps: scripts quote everything; host rows aggregate into a step result."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from smallyi.sop.context import host_result, merge_host_results
from smallyi.sop.steps.commands import exec_command, script_command, script_step
from smallyi.sop.variables import VarDecl


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
           "it's", "", "x\ny", "{{{{ .vars.x }}}}", "EOF\ntouch {m}", "x\n#\ntouch {m}", "${{SY_V_x}}"]


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize(("template", "args"), [
    ("printf '%s\\n' {{ .vars.x }}", ["{v}"]),
    ('printf "%s\\n" "{{ .vars.x }}"', ["{v}"]),
    ("printf '%s\\n' \"v=[{{ .vars.x }}]\"", ["v=[{v}]"]),
    ("printf '%s\\n' 'a{{ .vars.x }}b' \"c{{ .vars.x }}d\" {{ .vars.x }}", ["a${SY_V_x}b", "c{v}d", "{v}"]),
    ("cat <<EOF\n[{{ .vars.x }}]\nEOF", ["[{v}]"]),
    ("sh -c 'printf \"%s\\n\" \"{{ .vars.x }}\"'", ["{v}"]),
    ("printf '%s\\n' \"$(printf %s {{ .vars.x }})\"", ["{v}"]),
    ("# {{ .vars.x }}\nprintf '%s\\n' ok", ["ok"]),
])
def test_a_value_is_data_wherever_it_lands_in_the_command(template: str, args: list[str], shell: str,
                                                        tmp_path: Path) -> None:
    """Unquoted, in "...", in a here-document, in a nested sh -c '...', in $(...), after a comment: a value
    reaches the command as itself (in '...' the shell inserts nothing: the reference stays), and nothing
    in it runs, under sh and under bash."""
    marker = tmp_path / "ran"
    decls = {"x": VarDecl("x")}
    for raw in HOSTILE:
        value = raw.format(m=marker)
        cmd = exec_command(template, {"vars": {"x": value}}, decls)
        out = subprocess.run([shell, "-c", cmd], capture_output=True, text=True, timeout=10).stdout
        assert not marker.exists(), f"{template!r} with {value!r} ran: {cmd!r}"
        want = "".join(a.replace("{v}", value) + "\n" for a in args)
        assert out == want, (template, value, cmd, out)


def test_a_command_without_values_is_sent_as_written() -> None:
    """No {{ }}: no pinning line, the text unchanged; a value pins one line above the text."""
    assert exec_command("df -h | grep '/$'", {}, {}) == "df -h | grep '/$'"
    assert exec_command("ls {{ .vars.d }}", {"vars": {"d": "/tmp"}}, {"d": VarDecl("d")}) == \
        "export SY_V_d='/tmp'; readonly SY_V_d\nls \"${SY_V_d}\""


def test_a_script_pins_its_values_in_its_own_shell() -> None:
    """A shell script's values are pinned by the script's shell; its args stay separate words; a python
    script takes only vetted values, as they are."""
    decls = {"x": VarDecl("x"), "n": VarDecl("n", "int", 2)}
    cmd = script_step("echo {{ .vars.x }}", {"vars": {"x": "a'b"}}, decls, "bash", ["1 2"])
    assert shlex.split(cmd) == ["bash", "-c", "export SY_V_x='a'\"'\"'b'; readonly SY_V_x\necho \"${SY_V_x}\"",
                                "sop-script", "1 2"]
    assert subprocess.run(["sh", "-c", cmd], capture_output=True, text=True).stdout == "a'b\n"
    cmd = script_step("print({{ .vars.n | raw }} * 2)", {"vars": {"n": 2}}, decls, "python3", [])
    assert subprocess.run(["sh", "-c", cmd], capture_output=True, text=True).stdout == "4\n"
