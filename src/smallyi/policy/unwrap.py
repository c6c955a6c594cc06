"""Commands that run other commands: find the inner one, or mark the command opaque. Pure.

``sudo rm x`` runs ``rm x``; ``sh -c 'a; b'`` runs ``a`` and ``b``; ``xargs rm`` runs ``rm`` with
arguments nobody knows yet; ``bash`` alone, ``python3 -c ...``, ``source f`` and ``eval "$x"`` run
code the policy cannot see, so they are *opaque* (refused unless a rule trusts them). The outer
command is kept too, so rules can name ``sudo`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from smallyi.policy import sed
from smallyi.policy.shell import Command, Unparseable, Word, parse

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish", "csh", "tcsh", "rbash"})
INTERPRETERS = frozenset({
    "python", "python2", "python3", "pypy", "pypy3", "perl", "ruby", "irb", "node", "nodejs", "deno", "bun",
    "php", "lua", "luajit", "tclsh", "wish", "expect", "awk", "gawk", "mawk", "nawk", "Rscript", "R", "pwsh",
    "powershell", "guile", "racket", "jshell", "osascript", "gdb", "script", "parallel", "at", "batch",
    "crontab", "systemd-run", "busybox-sh", "vim", "vi", "nvim", "emacs", "less", "more", "man", "ed",
})
#: (options taking a value, whether the first operand is eaten before the command)
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset(["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group", "--close-from", "--chdir", "--host", "--prompt", "--role", "--type", "--other-user", "--command-timeout"]), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"}), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "stdbuf": (frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}), 0),
    "chrt": (frozenset({"-T", "-P", "-D"}), 1),
    "taskset": (frozenset(), 1),
    "chroot": (frozenset({"--userspec", "--groups"}), 1),
    "unshare": (frozenset({"--propagation", "--setgroups", "-S", "-G", "--setuid", "--setgid", "-R", "-w"}), 0),
    "nsenter": (frozenset({"-t", "--target", "-S", "-G", "-r", "-w"}), 0),
    "time": (frozenset({"-f", "-o", "--format", "--output"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "busybox": (frozenset(), 0),
    "runuser": (frozenset({"-u", "-g", "-G", "--user", "--group", "--supp-group"}), 0),
    "xargs": (frozenset(["-a", "-d", "-E", "-e", "-I", "-L", "-l", "-n", "-P", "-s", "--arg-file", "--delimiter", "--eof", "--replace", "--max-lines", "--max-args", "--max-procs", "--max-chars", "--process-slot-var"]), 0),
    "flock": (frozenset({"-w", "--timeout", "-E", "--conflict-exit-code"}), 1),
    "watch": (frozenset({"-n", "--interval", "-d", "--differences", "-q", "--equexit"}), 0),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir"}), 0),
    "ssh": (frozenset(["-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o", "-p", "-Q", "-R", "-S", "-W", "-w", "-B"]), 1),
    "su": (frozenset({"-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w", "--whitelist-environment"}),
           0),
}


def base(w: Word) -> str:
    """The command's name as rules see it: the last path component (``/bin/rm`` → ``rm``)."""
    return w.text.rsplit("/", 1)[-1]


def _split_options(name: str, args: tuple[Word, ...]) -> tuple[list[Word], tuple[Word, ...], str]:
    """(options, the rest, a ``-c``/``-s`` style string option's value or "")."""
    takes, _ = _WRAPPERS[name]
    opts: list[Word] = []
    i = 0
    string = ""
    while i < len(args):
        a = args[i]
        if not a.known:
            raise Unparseable(f"{name}: an option comes from an expansion ({a.show()}); cannot tell what runs")
        t = a.text
        if t == "--":
            i += 1
            break
        if name == "env" and "=" in t and not t.startswith("-"):
            opts.append(a)
            i += 1
            continue
        if not t.startswith("-") or t == "-":
            if name == "su" and t == "-":
                i += 1
                continue
            break
        opts.append(a)
        key = t.split("=", 1)[0]
        if name in ("su", "runuser", "flock") and key in ("-c", "--command"):
            if i + 1 >= len(args) or not args[i + 1].known:
                raise Unparseable(f"{name} -c: the command string is not known before it runs")
            string = args[i + 1].text
            i += 2
            continue
        if name == "env" and key in ("-S", "--split-string"):
            val = t.split("=", 1)[1] if "=" in t else (args[i + 1].text if i + 1 < len(args) else "")
            if "=" not in t and (i + 1 >= len(args) or not args[i + 1].known):
                raise Unparseable("env -S: the command string is not known before it runs")
            string = val
            i += 1 if "=" in t else 2
            continue
        if key in takes and "=" not in t:
            i += 2
            continue
        if len(t) > 2 and t[0] == "-" and t[1] != "-" and t[:2] in takes:
            i += 1  # -n10: the value is attached
            continue
        i += 1
    return opts, args[i:], string


def _shell(cmd: Command, name: str, recurse: Callable[[str, str], list[Command]]) -> list[Command]:
    args = cmd.argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        if not a.known:
            return [replace(cmd, opaque=f"{name}: an argument comes from an expansion; cannot tell what runs")]
        t = a.text
        if t in ("-o", "+o", "-O", "+O"):
            i += 2
            continue
        if t.startswith(("-", "+")) and len(t) > 1 and t != "--":
            if "c" in t[1:] and not t.startswith("--"):
                if i + 1 >= len(args):
                    raise Unparseable(f"{name} -c without a command string")
                code = args[i + 1]
                if not code.known:
                    return [replace(cmd, opaque=f"{name} -c: the command string comes from an expansion")]
                return [cmd, *recurse(code.text, f"via {name} -c")]
            i += 1
            continue
        if t == "--":
            i += 1
        break
    rest = args[i:]
    if rest:
        return [replace(cmd, opaque=f"{name} runs the script {rest[0].show()}, which the policy cannot read")]
    return [replace(cmd, opaque=f"{name} reads commands from its input, which the policy cannot see")]


def _inner(cmd: Command, rest: tuple[Word, ...], via: str, *, open_args: bool = False) -> Command:
    return Command(rest, cmd.redirects, open_args=open_args or cmd.open_args, via=via)


def _find(cmd: Command, recurse: Callable[[Command], list[Command]]) -> list[Command]:
    out = [cmd]
    args = cmd.argv
    for i, a in enumerate(args):
        if a.known and a.text in ("-exec", "-execdir", "-ok", "-okdir"):
            inner: list[Word] = []
            for b in args[i + 1:]:
                if b.known and b.text in (";", "+"):
                    break
                inner.append(Word("", False, "", "{}") if b.known and "{}" in b.text else b)
            if not inner:
                raise Unparseable("find -exec without a command")
            out += recurse(Command(tuple(inner), open_args=True, via="via find -exec"))
    return out


def _sed(cmd: Command, name: str) -> Command:
    """sed's ``w`` files become the command's redirections; its ``e`` makes it opaque (only ``trust`` lifts it)."""
    fx = sed.effects(cmd.argv[1:])
    if cmd.open_args and "find" not in cmd.via:
        fx = sed.Effects(opaque="sed gets more arguments at run time (xargs), which may be options or scripts")
    if fx.opaque:
        return replace(cmd, opaque=fx.opaque, needs_trust=True)
    out = replace(cmd, redirects=cmd.redirects + tuple(Word.literal(f) for f in fx.writes))
    if fx.runs:
        return replace(out, opaque=f"{name}: {fx.runs}", needs_trust=True)
    return out


def expand(cmd: Command, *, depth: int = 0) -> list[Command]:
    """``cmd`` and every command it runs (wrappers unwrapped, shells' ``-c`` strings parsed)."""
    if depth > 20:
        raise Unparseable("commands wrapped more than 20 levels deep")
    if not cmd.argv:
        return [cmd]
    head = cmd.name
    if not head.known:
        return [replace(cmd, opaque=(
            f"the command name comes from an expansion ({head.show()}); cannot tell what runs"))]
    name = base(head)

    def recurse_text(text: str, via: str) -> list[Command]:
        return [x for c in parse(text) for x in expand(c.with_via(via), depth=depth + 1)]

    def recurse_cmd(c: Command) -> list[Command]:
        return expand(c, depth=depth + 1)

    if name in SHELLS:
        return _shell(cmd, name, recurse_text)
    if name in INTERPRETERS or name.startswith(("python", "perl", "ruby", "php", "lua")):
        return [replace(cmd, opaque=f"{name} runs code the policy cannot see")]
    if name in ("eval", "trap"):
        args = cmd.argv[1:2] if name == "trap" else cmd.argv[1:]
        if not args:
            return [cmd]
        if not all(a.known for a in args):
            return [replace(cmd, opaque=f"{name}: the code comes from an expansion; cannot tell what runs")]
        return [cmd, *recurse_text(" ".join(a.text for a in args), f"via {name}")]
    if name in ("source", "."):
        return [replace(cmd, opaque=f"{name} runs commands from a file the policy cannot read")]
    if name in ("alias", "unalias", "hash", "enable") and len(cmd.argv) > 1:
        return [replace(cmd, opaque=f"{name} changes what later command names run")]
    if name == "find":
        return _find(cmd, recurse_cmd)
    if name in ("sed", "gsed"):
        return [_sed(cmd, name)]
    if name not in _WRAPPERS:
        return [cmd]
    if name == "command" and any(a.known and a.text in ("-v", "-V") for a in cmd.argv[1:2]):
        return [cmd]
    opts, rest, string = _split_options(name, cmd.argv[1:])
    if string:
        return [cmd, *recurse_text(string, f"via {name}")]
    _, skip = _WRAPPERS[name]
    if name == "ssh" and rest:
        remote = rest[1:]
        if not remote:
            return [replace(cmd, opaque="ssh without a command opens a shell the policy cannot see")]
        if not all(a.known for a in remote):
            return [replace(cmd, opaque="ssh: the remote command comes from an expansion")]
        return [cmd, *recurse_text(" ".join(a.text for a in remote), "via ssh")]
    if name == "watch" and rest and not any(o.text in ("-x", "--exec") for o in opts):
        if not all(a.known for a in rest):
            return [replace(cmd, opaque="watch: the command comes from an expansion")]
        return [cmd, *recurse_text(" ".join(a.text for a in rest), "via watch")]
    if name == "busybox" and rest and base(rest[0]) in ("sh", "ash", "hush"):
        return [cmd, *expand(_inner(cmd, rest, "via busybox"), depth=depth + 1)]
    rest = rest[skip:]
    if not rest:
        if (name in ("sudo", "doas", "su", "runuser") and any(
                o.text in ("-s", "-i", "--shell", "--login", "-l") for o in opts)) or name in ("su", "chroot"):
            return [replace(cmd, opaque=f"{name} opens a shell reading commands the policy cannot see")]
        if name == "xargs":
            return [cmd, Command((Word.literal("echo"),), open_args=True, via="via xargs")]
        return [cmd]
    if name in ("sudo", "doas") and any(o.text in ("-s", "-i", "--shell", "--login") for o in opts):
        if not all(a.known for a in rest):
            return [replace(cmd, opaque=f"{name} -s: the command comes from an expansion")]
        return [cmd, *recurse_text(" ".join(a.text for a in rest), f"via {name} -s")]
    inner = _inner(cmd, rest, f"via {name}", open_args=name == "xargs")
    return [cmd, *expand(inner, depth=depth + 1)]


def commands(text: str) -> list[Command]:
    """Every command ``text`` runs, after unwrapping; Unparseable if any part cannot be read."""
    return [x for c in parse(text) for x in expand(c)]
