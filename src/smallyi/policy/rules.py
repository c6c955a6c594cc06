"""Allow, deny, approve and trust rules per role and group, applied to every command of a line. Pure.

Patterns are shell words. The first matches the command's name (``rm``, ``/bin/rm`` and ``\\rm`` are
all ``rm``; ``*`` wildcards work); the first word ``>`` matches where a command writes instead.

- ``deny`` and ``approve`` patterns say what must be *present*, in any order: ``rm -rf /`` matches
  ``rm -r -f /``, ``rm / -fr``, ``rm --recursive --force /`` (long options count as their letters,
  ``options``) and ``sudo rm -rf /``. A word the shell fills in at run time
  (``$X``, ``*``) is assumed to be whatever would match, so ``rm -rf $DIR`` is refused too.
- ``allow`` patterns describe the *whole* command, word by word; a last ``*`` allows any further
  arguments. A word filled in at run time only matches ``*``. Once any allow rule applies to a
  caller, every command must match one (an allow list), and writing to a file needs an allow
  pattern like ``> /tmp/*``. A dangerous option (``find -delete``: ``options.DANGEROUS``) must be
  named by the pattern; ``*`` does not admit it. A ``..`` path never matches a pattern without ``..``.
- Paths are compared normalised (``/etc//passwd`` is ``/etc/passwd``; ``paths``), and as if the
  working directory might be ``/`` (``cd / && rm -rf *`` meets ``rm -rf /``).
- ``trust`` patterns let *opaque* commands (scripts, interpreters, ``bash`` reading its input) run;
  without one, an opaque command is refused whenever any rule applies to the caller. An allow pattern
  that names an opaque command lets it run too, except ``sed`` running commands (``e``): trust only.

Order: deny, then approve, then the allow list, then opacity. A line that cannot be parsed is
refused whenever any rule applies.
"""

from __future__ import annotations

import enum
import fnmatch
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from smallyi.config import PolicyRule
from smallyi.errors import ConfigError
from smallyi.policy import options, paths
from smallyi.policy.shell import Command, Unparseable, Word
from smallyi.policy.unwrap import base, commands

_WILD = set("*?[")


class Action(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    APPROVE = "approve"


@dataclass(frozen=True, slots=True)
class Pattern:
    source: str
    words: tuple[str, ...]

    @classmethod
    def compile(cls, text: str, *, where: str) -> Pattern:
        try:
            words = tuple(shlex.split(text))
        except ValueError as exc:
            raise ConfigError(f"{where}: pattern {text!r} is not valid shell words: {exc}") from None
        if not words or (words[0] == ">" and len(words) != 2):
            raise ConfigError(f"{where}: pattern {text!r} is empty (or '>' without one path)")
        return cls(text, (words[0], *(paths.normal_pattern(w) for w in words[1:])))

    @property
    def writes(self) -> bool:
        return self.words[0] == ">"


def _prefix(pat: str) -> str:
    for i, c in enumerate(pat):
        if c in _WILD:
            return pat[:i]
    return pat


def _could_match(pat: str, w: Word) -> bool:
    """Might the run-time value of ``w`` match ``pat``? Paths count normalised, and unknown words as
    whatever their literal part allows (``paths``)."""
    if w.known:
        return any(fnmatch.fnmatchcase(t, pat) for t in paths.spellings(w.text))
    return paths.could_be(pat, w)


def _dotdot(pw: str, text: str) -> bool:
    """Does ``text`` hold a ``..`` the allow pattern ``pw`` does not? (``/tmp/link/..`` may be anywhere.)"""
    return ".." in text.split("/") and ".." not in pw.split("/")


def _fits(pw: str, a: Word) -> bool:
    """Allow semantics for one word: known, no stray ``..``, matching as written or normalised."""
    return a.known and not _dotdot(pw, a.text) and (
        fnmatch.fnmatchcase(a.text, pw) or fnmatch.fnmatchcase(paths.normal(a.text), pw))


def _short_flags(args: Iterable[Word], command: str) -> tuple[set[str], bool]:
    """The command's option letters, long options folded into theirs (``--recursive`` → ``r``)."""
    flags: set[str] = set()
    unknown = False
    for a in args:
        if not a.known:
            unknown = unknown or a.prefix in ("", "-")
        elif a.text.startswith("--"):
            flags.add(options.long_letter(command, a.text) or "")
        elif a.text.startswith("-") and len(a.text) > 1:
            flags.update(options.same(command, a.text[1:]))
    flags.discard("")
    return flags, unknown


def _abbreviates(pw: str, a: Word) -> bool:
    """Does ``a`` spell the long option ``pw`` (GNU takes any prefix: ``--no-pres`` is ``--no-preserve-root``)?"""
    if not a.known or not a.text.startswith("--") or len(a.text) < 3:
        return False
    return pw.split("=", 1)[0].startswith(a.text.split("=", 1)[0]) and ("=" not in pw or a.text == pw)


def present(p: Pattern, cmd: Command) -> bool:
    """Deny/approve semantics: every pattern word is (or could be) among the command's."""
    if p.writes:
        return any(_could_match(p.words[1], r) for r in cmd.redirects)
    if not cmd.argv or not _could_match(p.words[0], Word(base(cmd.name), cmd.name.known, base(cmd.name),
                                                         cmd.name.raw)):
        return False
    args = cmd.argv[1:]
    name = base(cmd.name)
    flags, unknown_flags = _short_flags(args, name)
    for pw in p.words[1:]:
        if set(pw) & _WILD or not pw.startswith("-") or len(pw) < 2 or name in options.WORDS:
            if not (any(_could_match(pw, a) for a in args) or cmd.open_args):
                return False
            continue
        letter = options.long_letter(name, pw) if pw.startswith("--") else None
        if not pw.startswith("--") or letter:
            want = options.same(name, letter or pw[1:])
            if not (want <= flags or unknown_flags or cmd.open_args):
                return False
            continue
        if not (any(_could_match(pw, a) or _abbreviates(pw, a) for a in args) or unknown_flags or cmd.open_args):
            return False
    return True


def whole(p: Pattern, cmd: Command) -> bool:
    """Allow semantics: the command is exactly the pattern, word by word (a last ``*``: any more)."""
    if p.writes or not cmd.argv or not cmd.name.known:
        return False
    if not fnmatch.fnmatchcase(base(cmd.name), p.words[0]):
        return False
    pats, args = p.words[1:], cmd.argv[1:]
    tail = bool(pats) and pats[-1] == "*"
    if tail:
        pats = pats[:-1]
    if len(args) < len(pats) or (len(args) > len(pats) and not tail):
        return False
    if cmd.open_args and not tail:
        return False
    for pw, a in zip(pats, args, strict=False):
        if pw != "*" and not _fits(pw, a):
            return False  # /var/log/* must not admit /var/log/../../etc/shadow
    # a dangerous option only by name: ``find * -delete`` admits -delete, ``find *`` does not
    return all(i < len(pats) and pats[i] != "*" and _prefix(pats[i]).startswith(opt)
               for i, opt, _ in options.dangerous(base(cmd.name), args))


def writes_allowed(pats: Sequence[Pattern], cmd: Command) -> bool:
    for r in cmd.redirects:
        if r.known and paths.normal(r.text) in ("/dev/null", "/dev/stdout", "/dev/stderr"):
            continue
        if not any(p.writes and _fits(p.words[1], r) for p in pats):
            return False
    return True


def _option_hint(cmd: Command) -> str:
    """Why an allow pattern like ``find *`` did not admit ``cmd``: a dangerous option it does not name."""
    risky = options.dangerous(base(cmd.name), cmd.argv[1:]) if cmd.argv else []
    if not risky:
        return _dotdot_hint(cmd.argv[1:])
    i, opt, why = risky[0]
    if not cmd.argv[1 + i].known:
        return f" ({opt} comes from an expansion and {why}: write the argument out)"
    return f" ({opt} {why}: an allow pattern must name it, '*' does not admit it)"


def _dotdot_hint(words: Sequence[Word]) -> str:
    if any(w.known and ".." in w.text.split("/") for w in words):
        return " (a path with '..' never matches an allow pattern: write it without)"
    return ""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    deny: tuple[Pattern, ...]
    allow: tuple[Pattern, ...]
    approve: tuple[Pattern, ...]
    trust: tuple[Pattern, ...]
    roles: frozenset[str]
    groups: frozenset[str]
    reason: str

    def applies(self, role: str, groups: Iterable[str]) -> bool:
        if self.roles and role not in self.roles:
            return False
        return not self.groups or bool(self.groups & set(groups))


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    #: what to tell the user (empty when allowed)
    reason: str = ""
    rule: str = ""
    #: the command (of the line) the verdict is about
    command: str = ""

    @property
    def allowed(self) -> bool:
        return self.action is Action.ALLOW


ALLOWED = Verdict(Action.ALLOW)


class CommandPolicy:
    """The config's ``policy.rules``, compiled once; :meth:`check` judges a command line."""

    def __init__(self, rules: Sequence[PolicyRule], *, known_roles: Iterable[str] | None = None) -> None:
        roles = set(known_roles) if known_roles is not None else None
        self.rules: list[Rule] = []
        for i, r in enumerate(rules):
            where = f"policy.rules[{i}]" + (f" ({r.name})" if r.name else "")
            if roles is not None:
                for role in r.roles:
                    if role not in roles:
                        raise ConfigError(f"{where}.roles: unknown role {role!r}; known: {', '.join(sorted(roles))}")

            def comp(items: list[str], kind: str, where: str = where) -> tuple[Pattern, ...]:
                return tuple(Pattern.compile(t, where=f"{where}.{kind}") for t in items)

            if not (r.deny or r.allow or r.approve or r.trust):
                raise ConfigError(f"{where}: give at least one of deny, allow, approve, trust")
            self.rules.append(Rule(r.name or f"rule {i + 1}", comp(r.deny, "deny"), comp(r.allow, "allow"),
                                   comp(r.approve, "approve"), comp(r.trust, "trust"), frozenset(r.roles),
                                   frozenset(r.groups), r.reason))

    def applicable(self, role: str, groups: Iterable[str]) -> list[Rule]:
        groups = set(groups)
        return [r for r in self.rules if r.applies(role, groups)]

    def check(self, line: str, *, role: str, groups: Iterable[str], fresh: bool = True) -> Verdict:
        """The verdict on ``line`` for a caller holding ``role`` acting on hosts in ``groups``; ``fresh``
        when a new shell runs it (a task's command), not a shell already running (a terminal's line)."""
        rules = self.applicable(role, groups)
        if not rules:
            return ALLOWED
        try:
            cmds = commands(line, fresh=fresh)
        except Unparseable as exc:
            return Verdict(Action.DENY, f"the command cannot be checked ({exc}); simplify it", "parser", line)
        approval: Verdict | None = None
        allow_list = [p for r in rules for p in r.allow]
        trusted = [p for r in rules for p in r.trust]
        for cmd in cmds:
            shown = cmd.show() + (f" ({cmd.via})" if cmd.via else "")
            for r in rules:
                for p in r.deny:
                    if present(p, cmd):
                        why = r.reason or f"it matches the deny pattern {p.source!r}"
                        return Verdict(Action.DENY, f"{shown!r} is refused by policy rule {r.name!r}: {why}",
                                       r.name, shown)
            for r in rules:
                if approval is None and any(present(p, cmd) for p in r.approve):
                    why = r.reason or "it matches a rule that needs a second person's approval"
                    approval = Verdict(Action.APPROVE, f"{shown!r} needs approval (rule {r.name!r}): {why}",
                                       r.name, shown)
            if allow_list and cmd.argv and not any(whole(p, cmd) for p in allow_list):
                return Verdict(Action.DENY, (f"{shown!r} is not in the allow list for role {role!r}"
                                             f"{_option_hint(cmd)}; ask an admin to allow it"),
                               "allow list", shown)
            if allow_list and not writes_allowed(allow_list, cmd):
                target = ", ".join(r.show() for r in cmd.redirects)
                return Verdict(Action.DENY, (f"{shown!r} writes to {target}, which the allow list for role "
                                             f"{role!r} does not allow{_dotdot_hint(cmd.redirects)}"),
                               "allow list", shown)
            if cmd.opaque and not any(whole(p, cmd) for p in (trusted if cmd.needs_trust else (*trusted, *allow_list))):
                return Verdict(Action.DENY, f"{shown!r} is refused: {cmd.opaque}", "opaque", shown)
        return approval or ALLOWED
