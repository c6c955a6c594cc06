"""Path normalisation and dangerous options in the command policy (smallyi.policy.paths, options, tools)."""

from __future__ import annotations

import pytest

from smallyi.config import PolicyRule
from smallyi.policy import paths
from smallyi.policy.rules import Action, CommandPolicy
from smallyi.policy.unwrap import commands


def check(rule: PolicyRule, line: str) -> Action:
    return CommandPolicy([rule]).check(line, role="operator", groups=[]).action


@pytest.mark.parametrize(("text", "want"), [
    ("/etc//passwd", "/etc/passwd"), ("/etc/./passwd", "/etc/passwd"), ("/../etc/passwd", "/etc/passwd"),
    ("//", "/"), ("/tmp/..", "/"), ("of=//dev/./sda", "of=/dev/sda"), ("./a/../..", ".."),
    ("s/a//", "s/a//"), ("build//x", "build//x"),
])
def test_paths_are_normalised_lexically_and_other_words_left_alone(text: str, want: str) -> None:
    """``//``, ``.`` and ``..`` resolve in paths (also after ``key=``); a relative path stays relative, and a
    word that is not plainly a path (a sed script) is untouched."""
    assert paths.normal(text) == want


def test_patterns_keep_dotdot_and_globs() -> None:
    """A rule's words lose doubled slashes, ``.`` and a trailing slash, but keep ``..`` and globs."""
    assert paths.normal_pattern("/tmp//./x/") == "/tmp/x"
    assert paths.normal_pattern("/var/log/../x/*") == "/var/log/../x/*"
    assert paths.normal_pattern("-rf") == "-rf"


def test_an_allow_pattern_admits_a_dangerous_option_only_by_name() -> None:
    """``find *`` does not admit ``-delete``; ``find /tmp/* -delete`` does, for /tmp only."""
    rule = PolicyRule(allow=["find *", "find /tmp/* -delete"])
    assert check(rule, "find /tmp/build -delete") is Action.ALLOW
    assert check(rule, "find / -delete") is Action.DENY
    assert check(rule, "find /tmp/../etc -delete") is Action.DENY


def test_refusals_say_which_option_or_path_to_change() -> None:
    """The reason names the dangerous option and what it does, or the ``..`` that never matches."""
    policy = CommandPolicy([PolicyRule(allow=["find *", "journalctl *", "echo *", "> /tmp/*"])])
    why = policy.check("find / -delete", role="r", groups=[]).reason
    assert "-delete deletes every file it finds" in why and "must name it" in why
    assert "--vacuum-time" in policy.check("journalctl --vacuum-time=1s", role="r", groups=[]).reason
    assert "'..'" in policy.check("echo x > /tmp/../etc/passwd", role="r", groups=[]).reason


def test_find_options_are_words_in_deny_patterns() -> None:
    """``find / -delete`` as a deny pattern matches -delete itself (any spelling of /), not letters of -maxdepth."""
    rule = PolicyRule(deny=["find / -delete"])
    assert check(rule, "find //. -name x -delete") is Action.DENY
    assert check(rule, "find / -maxdepth 1 -ls -type f") is Action.ALLOW


def test_tool_writes_and_programs_become_redirections_and_commands() -> None:
    """tee/sort/uniq/sed -i/find -fprint files are redirections; sort's compress program and ssh's
    ProxyCommand are commands of their own; find's {} lies under its start point."""
    found = {c.show(): c for c in commands(
        "tee -a /x/1 | sort -o /x/2 --compress-program=gzip | uniq in /x/3 | ssh -o ProxyCommand=nc h true")}
    assert [r.text for r in found["tee -a /x/1"].redirects] == ["/x/1"]
    assert "gzip" in found and "nc" in found and "true" in found
    assert [r.text for r in found["uniq in /x/3"].redirects] == ["/x/3"]
    (_, sed) = commands("find /srv//app -exec sed -i s/a/b/ {} +")
    assert sed.redirects[0].prefix == "/srv/app"
