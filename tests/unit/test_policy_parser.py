"""The command policy's shell parser (smallyi.policy), and the terminal's line guard that uses it."""

from __future__ import annotations

import pytest

from smallyi.config import PolicyRule
from smallyi.errors import ConfigError
from smallyi.policy.rules import Action, CommandPolicy
from smallyi.policy.shell import Unparseable, parse
from smallyi.policy.unwrap import commands
from smallyi.terminal.line_guard import KILL_LINE, LineGuard

POLICY = CommandPolicy([PolicyRule(deny=["reboot"], roles=["operator"], groups=["prod"])])


def names(text: str) -> list[str]:
    return [c.show() for c in commands(text)]


def test_every_command_of_a_line_is_found_with_quotes_removed() -> None:
    """Lists, pipelines, substitutions and wrappers all yield their commands, quotes removed."""
    assert names("a 'b c' | d && e\nf") == ["a b c", "d", "e", "f"]
    assert names("sudo -u x env A=1 'ls' -l") == ["sudo -u x env A=1 ls -l", "env A=1 ls -l", "ls -l"]
    assert "reboot" in names("echo $(printf %s `reboot`)")


def test_expansions_are_unknown_words_with_their_literal_prefix() -> None:
    """``/tmp/$x`` is unknown but starts with /tmp/; ``$x`` as a command is opaque."""
    (cmd,) = parse("rm /tmp/$x")
    assert not cmd.argv[1].known and cmd.argv[1].prefix == "/tmp/"
    assert commands("$x")[0].opaque


@pytest.mark.parametrize("bad", ["echo 'open", "echo \"open", "echo $(true", "cat <<EOF\nx", "coproc x", "echo \\"])
def test_what_cannot_be_read_is_unparseable(bad: str) -> None:
    """Unbalanced quotes and parentheses, unfinished here-documents, coproc and a trailing backslash raise."""
    with pytest.raises(Unparseable):
        parse(bad)


def test_rules_apply_only_to_their_roles_and_groups() -> None:
    """A rule for operators on prod does not touch admins, nor operators elsewhere."""
    assert POLICY.check("reboot", role="operator", groups=["prod", "web"]).action is Action.DENY
    assert POLICY.check("reboot", role="admin", groups=["prod"]).allowed
    assert POLICY.check("reboot", role="operator", groups=["dev"]).allowed
    assert POLICY.check("echo 'open", role="admin", groups=["prod"]).allowed  # no rule applies: not parsed


def test_bad_rules_are_config_errors_naming_the_rule() -> None:
    """An empty rule, an unknown role or an unbalanced pattern is refused at start with the rule's place."""
    with pytest.raises(ConfigError, match=r"policy.rules\[0\]: give at least one"):
        CommandPolicy([PolicyRule()])
    with pytest.raises(ConfigError, match="unknown role 'ops'"):
        CommandPolicy([PolicyRule(deny=["x"], roles=["ops"])], known_roles=["admin", "operator"])
    with pytest.raises(ConfigError, match=r"deny: pattern"):
        CommandPolicy([PolicyRule(deny=["echo 'x"])])


def test_the_terminal_guard_withholds_a_refused_line_and_lets_others_through() -> None:
    """Typed ``reboot`` + Enter is replaced by Ctrl-U with a reason; ``uptime`` passes; editing keys count."""
    g = LineGuard(lambda line: POLICY.check(line, role="operator", groups=["prod"]))
    sent, why = g.feed("rebooo\x7ft\r")
    assert sent.endswith(KILL_LINE) and "\r" not in sent and why and "reboot" in why
    assert g.feed("uptime\r") == ("uptime\r", None)
    assert g.feed("re")[1] is None and g.feed("boot\r")[1] is not None
    assert g.feed("\x1b[A\r") == ("\x1b[A\r", None)  # history recall: unknown line, let through (not a boundary)
