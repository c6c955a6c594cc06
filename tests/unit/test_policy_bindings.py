"""Values a command pins on its first line: one quoting, read back exactly, and judged by the policy as the
values they are, only where the shell keeps them."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from smallyi.config import PolicyRule
from smallyi.policy.bindings import prelude, split
from smallyi.policy.rules import Action, CommandPolicy

VALUES = ["plain", "", "it's", "'", "''\"'\"'", "a\nb", "$(touch /tmp/x)", "`id`", "\\", " sp ", "${SY_A}", "\t"]

DENY = CommandPolicy([PolicyRule(name="destructive", deny=["rm -rf /"])])
ALLOW = CommandPolicy([PolicyRule(name="ops", allow=["rm -rf /tmp/*", "echo *"])])


def verdict(policy: CommandPolicy, line: str, *, fresh: bool = True) -> Action:
    return policy.check(line, role="operator", groups=["web"], fresh=fresh).action


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_the_line_sets_exactly_the_values_it_is_read_back_as(shell: str) -> None:
    """What the shell sets from the pinning line is what ``split`` reads from it, for any value."""
    env = {f"SY_{i}": v for i, v in enumerate(VALUES)}
    line = prelude(env)
    assert split(line + "rest") == (env, len(line))
    script = line + "".join(f'printf "%s\\0" "${{SY_{i}}}"\n' for i in range(len(VALUES)))
    out = subprocess.run([shell, "-c", script], capture_output=True, timeout=10).stdout.decode()
    assert out.split("\0")[:-1] == VALUES
    frozen = line + '(SY_0=changed; printf %s "$SY_0") 2>/dev/null; printf "|%s" "$SY_0"'
    out = subprocess.run([shell, "-c", frozen], capture_output=True, text=True, timeout=10).stdout
    assert out.endswith("|plain") and "changed" not in out  # readonly: nothing later changes it
    assert prelude({}) == ""
    with pytest.raises(ValueError, match="not a pinned variable name"):
        prelude({"PATH": "/tmp"})


def test_only_the_exact_line_pins() -> None:
    """Anything but the written form (other names, no readonly, names out of order) pins nothing."""
    assert split("export SY_A='x'; readonly SY_A\n")[0] == {"SY_A": "x"}
    for text in ["export SY_A='x'\n", "export SY_A='x'; readonly SY_B\n", "export PATH='/x'; readonly PATH\n",
                 "export SY_A='x' SY_B='y'; readonly SY_B SY_A\n", " export SY_A='x'; readonly SY_A\n",
                 "export SY_A=x; readonly SY_A\n", "export SY_A='x'; readonly SY_A; rm -rf /\n",
                 "export SY_A='x' SY_A='y'; readonly SY_A SY_A\n"]:
        assert split(text) == ({}, 0), text


def test_the_policy_judges_pinned_values() -> None:
    """A deny rule meets the pinned value, not an unknown word: /tmp/x passes, / is refused; an allow list
    matches the value; the pinning line itself is not a command to allow."""
    cmd = prelude({"SY_V_d": "/tmp/x"}) + 'rm -rf "${SY_V_d}"'
    assert verdict(DENY, cmd) is Action.ALLOW and verdict(ALLOW, cmd) is Action.ALLOW
    cmd = prelude({"SY_V_d": "/"}) + 'rm -rf "${SY_V_d}"'
    assert verdict(DENY, cmd) is Action.DENY and verdict(ALLOW, cmd) is Action.DENY
    cmd = prelude({"SY_V_d": "/"}) + 'x=$(echo "$SY_V_d"); rm -rf "$(echo "${SY_V_d}")"; echo "${SY_V_d}"'
    assert verdict(DENY, cmd) is Action.DENY  # an unknown word may still be anything
    cmd = prelude({"SY_V_d": "/tmp/x"}) + 'echo "$(rm -rf "${SY_V_d}")"'
    assert verdict(ALLOW, cmd) is Action.ALLOW  # a $(...) runs in the same, pinned, shell


@pytest.mark.parametrize("body", [
    'rm -rf ${SY_V_d}',                                   # unquoted: the command may have set IFS
    "sh -c 'rm -rf \"${SY_V_d}\"'",                       # a new shell inherits it, unpinned
    "eval \"$(printf 'export SY_V_d=/; readonly SY_V_d\\n')\"; rm -rf \"${SY_V_d}\"",
    'typeset +r SY_V_d; SY_V_d=/; rm -rf "${SY_V_d}"',   # zsh takes readonly off so
])
def test_a_pinned_value_is_unknown_where_the_shell_does_not_keep_it(body: str) -> None:
    """Outside double quotes of the pinning shell a reference is an unknown word: a deny rule assumes the worst."""
    assert verdict(DENY, prelude({"SY_V_d": "/tmp/x"}) + body) is Action.DENY


def test_a_pinning_line_counts_only_at_the_top_of_a_new_shell() -> None:
    """A new shell's own first line pins for it; eval'd text and a terminal's line run in a shell that may
    have pinned other values already, so their pinning lines are not believed."""
    inner = prelude({"SY_V_d": "/tmp/x"}) + 'rm -rf "${SY_V_d}"'
    assert verdict(DENY, f"sh -c {_q(inner)}") is Action.ALLOW
    assert verdict(DENY, f"eval {_q(inner)}") is Action.DENY
    assert verdict(DENY, prelude({"SY_V_d": "/"}) + f"eval {_q(inner)}") is Action.DENY
    assert verdict(DENY, inner, fresh=False) is Action.DENY


def _q(text: str) -> str:
    return shlex.quote(text)
