"""Commands that run other commands: find the inner one, or mark the command opaque. Pure.

``sudo rm x`` runs ``rm x``; ``sh -c 'a; b'`` runs ``a`` and ``b``; ``xargs rm`` runs ``rm`` with
arguments nobody knows yet; ``ssh -o ProxyCommand=CMD`` and ``strace -o '|CMD'`` run CMD locally;
``bash`` alone, ``python3 -c ...``, ``source f`` and ``eval "$x"`` run code the policy cannot see, so they
are *opaque* (refused unless a rule trusts them). The outer command is kept too, so rules can name
``sudo`` itself. Files a wrapper or tool writes (``strace -o F``, ``tee F``, ``sort -o F``, ``sed -i F``)
become the command's redirections (``tools``, ``sed``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from smallyi.policy import sed, tools
from smallyi.policy.shell import Command, Unparseable, Word, assignment, parse

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish", "csh", "tcsh", "rbash"})
INTERPRETERS = frozenset({
    "python", "python2", "python3", "pypy", "pypy3", "perl", "ruby", "irb", "node", "nodejs", "deno", "bun",
    "php", "lua", "luajit", "tclsh", "wish", "expect", "awk", "gawk", "mawk", "nawk", "Rscript", "R", "pwsh",
    "powershell", "guile", "racket", "jshell", "osascript", "gdb", "script", "parallel", "at", "batch",
    "crontab", "systemd-run", "busybox-sh", "vim", "vi", "nvim", "emacs", "less", "more", "man", "ed",
    "sudoedit",
})
#: (options taking a value in the next word, whether the first operand is eaten before the command). Options
#: whose value is optional (``watch -d``, ``xargs -e``, ``nsenter -r``) take it only attached: not listed.
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset(["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-R", "-t", "-U", "-T", "--user", "--group", "--close-from", "--chdir", "--chroot", "--host", "--prompt", "--role", "--type", "--other-user", "--command-timeout"]), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"}), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "stdbuf": (frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}), 0),
    "chrt": (frozenset({"-T", "-P", "-D", "--sched-runtime", "--sched-period", "--sched-deadline"}), 1),
    "taskset": (frozenset(), 1),
    "chroot": (frozenset({"--userspec", "--groups"}), 1),
    "unshare": (frozenset({"--propagation", "--setgroups", "-S", "-G", "--setuid", "--setgid", "-R", "--root", "-w", "--wd", "--map-user", "--map-group", "--map-users", "--map-groups"}), 0),
    "nsenter": (frozenset({"-t", "--target", "-S", "-G", "--setuid", "--setgid"}), 0),
    "time": (frozenset({"-f", "-o", "--format", "--output"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "busybox": (frozenset(), 0),
    "runuser": (frozenset({"-u", "-g", "-G", "-s", "-w", "--user", "--group", "--supp-group", "--shell", "--whitelist-environment"}), 0),
    "xargs": (frozenset(["-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter", "--max-args", "--max-procs", "--max-chars", "--process-slot-var"]), 0),
    "flock": (frozenset({"-w", "--timeout", "--wait", "-E", "--conflict-exit-code"}), 1),
    "watch": (frozenset({"-n", "--interval", "-q", "--equexit"}), 0),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir"}), 0),
    "su": (frozenset({"-s", "--shell", "-g", "--group", "-G", "--supp-group", "-w", "--whitelist-environment"}), 0),
    "unbuffer": (frozenset(), 0),
    "strace": (frozenset(["-a", "-b", "-e", "-E", "-I", "-o", "-O", "-p", "-P", "-s", "-S", "-u", "-U", "-X", "--columns", "--detach-on", "--env", "--interruptible", "--output", "--summary-syscall-overhead", "--attach", "--trace-path", "--string-limit", "--summary-sort-by", "--user", "--summary-columns", "--const-print-style", "--trace", "--trace-fds", "--signal", "--status", "--abbrev", "--verbose", "--raw", "--read", "--write", "--fault", "--inject", "--kvm", "--syscall-limit", "--argv0"]), 0),
    "ltrace": (frozenset(["-a", "-A", "-D", "-e", "-F", "-l", "-n", "-o", "-p", "-s", "-u", "-w", "-x", "--align", "--config", "--indent", "--library", "--output"]), 0),
    "setpriv": (frozenset(["--reuid", "--regid", "--ruid", "--euid", "--rgid", "--egid", "--groups", "--inh-caps", "--ambient-caps", "--bounding-set", "--securebits", "--pdeathsig", "--selinux-label", "--apparmor-profile", "--landlock-access", "--landlock-rule"]), 0),
    "prlimit": (frozenset({"-p", "--pid", "-o", "--output"}), 0),
    "numactl": (frozenset(["-i", "--interleave", "-p", "--preferred", "-m", "--membind", "-C", "--physcpubind", "-N", "--cpunodebind", "-P", "--preferred-many", "-w", "--weighted-interleave"]), 0),
    "fakeroot": (frozenset({"-l", "--lib", "--faked", "-s", "-i", "-b"}), 0),
    "eatmydata": (frozenset(), 0),
    "nocache": (frozenset({"-n"}), 0),
    "catchsegv": (frozenset(), 0),
    "pkexec": (frozenset({"--user"}), 0),
    "gosu": (frozenset(), 1),
    "su-exec": (frozenset(), 1),
    "dbus-run-session": (frozenset({"--config-file", "--dbus-daemon"}), 0),
    "systemd-inhibit": (frozenset({"--what", "--who", "--why", "--mode"}), 0),
    "sshpass": (frozenset({"-p", "-f", "-d", "-P"}), 0),
    "proxychains": (frozenset({"-f"}), 0),
    "proxychains4": (frozenset({"-f"}), 0),
    "torsocks": (frozenset({"-u", "--user", "-p", "--pass", "-a", "--address", "-P", "--port"}), 0),
    "firejail": (frozenset(), 0),
    "faketime": (frozenset({"-p", "--date-prog"}), 1),
    "valgrind": (frozenset(), 0),
    "cgexec": (frozenset({"-g"}), 0),
    "cpulimit": (frozenset({"-l", "--limit", "-p", "--pid", "-e", "--exe", "-c", "--cpu"}), 0),
}
#: options whose value is a command line a shell runs
_STRINGS: dict[str, frozenset[str]] = {
    "su": frozenset({"-c", "--command"}), "runuser": frozenset({"-c", "--command"}),
    "flock": frozenset({"-c", "--command"}), "env": frozenset({"-S", "--split-string"}),
}
#: options naming a file the wrapper writes
_WRITE_OPTS: dict[str, frozenset[str]] = {name: frozenset({"-o", "--output"}) for name in ("strace", "ltrace", "time")}
#: with no command, these start a shell reading commands from their input
_SHELL_WITHOUT_COMMAND = frozenset({"su", "chroot", "nsenter", "unshare", "fakeroot", "pkexec", "firejail"})

#: ssh, scp and sftp: options taking a value; for scp and sftp, those naming a program they run
_SSH_TAKES = {"ssh": "bceilmopBDEFIJLOPQRSwW", "scp": "cDFiJloPSX", "sftp": "bBcDFiJloPRsSX"}
_SSH_PROGRAMS = {"ssh": "", "scp": "SD", "sftp": "SD"}
#: ssh_config keywords whose value is a command run locally through a shell
_SSH_LOCAL = frozenset({"proxycommand", "localcommand", "knownhostscommand"})
_RSYNC_TAKES = frozenset({"-e", "-B", "-f", "-M", "-T", "-@", "--rsh"})


def base(w: Word) -> str:
    """The command's name as rules see it: the last path component (``/bin/rm`` → ``rm``)."""
    return w.text.rsplit("/", 1)[-1]


def _option(takes: frozenset[str], args: tuple[Word, ...], i: int) -> tuple[str, Word | None, int]:
    """The option word at ``i``: (the option, its value or None, the index after it). Short options cluster
    (``-Eu root`` is ``-E -u root``, ``-n5`` is ``-n 5``); ``--opt=value`` and ``--opt value`` both work."""
    t = args[i].text
    nxt = args[i + 1] if i + 1 < len(args) else None
    if t.startswith("--"):
        key, eq, value = t.partition("=")
        if eq:
            return key, Word.literal(value), i + 1
        return (key, nxt, i + 2) if key in takes else (key, None, i + 1)
    for j in range(1, len(t)):
        if "-" + t[j] in takes:
            if t[j + 1:]:
                return "-" + t[j], Word.literal(t[j + 1:]), i + 1
            return "-" + t[j], nxt, i + 2
    return t, None, i + 1


def _split_options(name: str, args: tuple[Word, ...]) -> tuple[list[Word], tuple[Word, ...], str, list[tuple[str, Word]]]:
    """(options, the rest, a ``-c``/``-S`` style command string or "", each option's (name, value))."""
    takes = _WRAPPERS[name][0] | _STRINGS.get(name, frozenset())
    opts: list[Word] = []
    values: list[tuple[str, Word]] = []
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
            if name in ("su", "runuser") and t == "-":
                i += 1
                continue
            break
        opts.append(a)
        key, value, i = _option(takes, args, i)
        if key in _STRINGS.get(name, ()):
            if value is None or not value.known:
                raise Unparseable(f"{name} {key}: the command string is not known before it runs")
            string = value.text
        elif value is not None:
            values.append((key, value))
    return opts, args[i:], string, values


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
    """The command a wrapper runs. Leading ``NAME=value`` words are variables it sets (sudo and doas take
    them), not the command's name: ``sudo FOO=1 rm -rf /`` runs ``rm``."""
    assigns: list[str] = []
    while rest and assignment(rest[0]):
        assigns.append(assignment(rest[0]))
        rest = rest[1:]
    return Command(rest, cmd.redirects, open_args=open_args or cmd.open_args, via=via, assigns=tuple(assigns))


def _su(cmd: Command, name: str, recurse: Callable[[str, str], list[Command]]) -> list[Command]:
    """su (and runuser without ``-u``) take options anywhere: ``su root -c CMD``; other arguments go to a shell."""
    args = cmd.argv[1:]
    takes = _WRAPPERS[name][0] | _STRINGS[name]
    operands: list[Word] = []
    string = ""
    i = 0
    while i < len(args):
        a = args[i]
        if not a.known:
            raise Unparseable(f"{name}: an argument comes from an expansion ({a.show()}); cannot tell what runs")
        if a.text == "--":
            operands += args[i + 1:]
            break
        if not a.text.startswith("-") or a.text == "-":
            operands += [a] if a.text != "-" else []
            i += 1
            continue
        key, value, i = _option(takes, args, i)
        if key in _STRINGS[name]:
            if value is None or not value.known:
                raise Unparseable(f"{name} {key}: the command string is not known before it runs")
            string = value.text
    if string:
        return [cmd, *recurse(string, f"via {name} -c")]
    if operands[1:]:
        return [replace(cmd, opaque=f"{name} passes {operands[1].show()} to a shell, which the policy cannot follow")]
    return [replace(cmd, opaque=f"{name} opens a shell reading commands the policy cannot see")]


def _remote_options(name: str, values: list[tuple[str, Word]], recurse: Callable[[str, str], list[Command]],
                    recurse_cmd: Callable[[Command], list[Command]]) -> tuple[list[Command], str, list[Word], str]:
    """What ssh/scp/sftp options run here: (local commands, why opaque or "", files written, RemoteCommand)."""
    runs: list[Command] = []
    writes: list[Word] = []
    opaque = remote = ""
    for key, v in values:
        letter = key[1:]
        if letter == "o":
            m = re.match(r"\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*)", v.text, re.S) if v.known else None
            if not v.known:
                opaque = opaque or f"{name} -o: the option comes from an expansion; it may run a command"
                continue
            if not m:
                continue
            keyword, value = m.group(1).lower(), m.group(2).strip()
            if keyword in _SSH_LOCAL and value.lower() != "none":
                runs += recurse(value, f"via {name} -o {m.group(1)}")
            elif keyword == "remotecommand":
                remote = value
            elif keyword in ("pkcs11provider", "securitykeyprovider", "include"):
                opaque = opaque or f"{name} -o {m.group(1)} loads code or options the policy cannot read"
        elif letter == "F" and not (v.known and v.text in ("/dev/null", "none")):
            opaque = opaque or f"{name} -F reads options (ProxyCommand runs a command) from a file the policy cannot read"
        elif letter == "I" and name == "ssh":
            opaque = opaque or "ssh -I loads a PKCS#11 library, which runs code the policy cannot see"
        elif letter == "E" and name == "ssh":
            writes.append(v)
        elif letter == "b" and name == "sftp":
            opaque = opaque or "sftp -b runs a batch file (its ! lines are local commands) the policy cannot read"
        elif letter in _SSH_PROGRAMS[name]:
            runs += recurse_cmd(Command((v,), open_args=True, via=f"via {name} -{letter}"))
    return runs, opaque, writes, remote


def _ssh(cmd: Command, recurse: Callable[[str, str], list[Command]],
         recurse_cmd: Callable[[Command], list[Command]]) -> list[Command]:
    """ssh HOST CMD runs CMD remotely; options may follow the host too (ssh parses them again there)."""
    args = cmd.argv[1:]
    takes = frozenset("-" + c for c in _SSH_TAKES["ssh"])
    values: list[tuple[str, Word]] = []
    host: Word | None = None
    i = 0
    while i < len(args):
        a = args[i]
        if not a.known:
            if host is None:
                raise Unparseable(f"ssh: an option comes from an expansion ({a.show()}); cannot tell what runs")
            break
        if a.text == "--":
            i += 1
            if host is None and i < len(args):
                host, i = args[i], i + 1
            break
        if a.text.startswith("-") and len(a.text) > 1:
            key, value, i = _option(takes, args, i)
            values += [(key, value)] if value is not None else []
            continue
        if host is not None:
            break
        host, i = a, i + 1
    runs, opaque, writes, remote_option = _remote_options("ssh", values, recurse, recurse_cmd)
    out = replace(cmd, redirects=cmd.redirects + tuple(writes))
    remote = args[i:]
    if opaque or host is None:  # an allow pattern like ssh * must not admit a config file's ProxyCommand
        return [replace(out, opaque=opaque, needs_trust=True) if opaque else out, *runs]
    if not remote and remote_option:
        return [out, *runs, *recurse(remote_option, "via ssh -o RemoteCommand")]
    if not remote:
        return [replace(out, opaque="ssh without a command opens a shell the policy cannot see"), *runs]
    if not all(a.known for a in remote):
        return [replace(out, opaque="ssh: the remote command comes from an expansion"), *runs]
    return [out, *runs, *recurse(" ".join(a.text for a in remote), "via ssh")]


def _copier(cmd: Command, name: str, recurse: Callable[[str, str], list[Command]],
            recurse_cmd: Callable[[Command], list[Command]]) -> list[Command]:
    """scp, sftp and rsync run ssh (or ``-e``/``-S`` PROGRAM) locally: their options say what runs."""
    args = cmd.argv[1:]
    takes = _RSYNC_TAKES if name == "rsync" else frozenset("-" + c for c in _SSH_TAKES[name])
    values: list[tuple[str, Word]] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.known and a.text == "--":
            break
        if not a.known and (a.prefix == "" or a.prefix.startswith("-")):
            return [replace(cmd, needs_trust=True, opaque=(
                f"{name}: an argument comes from an expansion and may be an option that runs a command "
                "(-e, -o ProxyCommand); put it after --"))]
        if a.known and a.text.startswith("-") and len(a.text) > 1:
            key, value, i = _option(takes, args, i)
            values += [(key, value)] if value is not None else []
            continue
        i += 1
    if name != "rsync":
        runs, opaque, writes, _ = _remote_options(name, values, recurse, recurse_cmd)
        return [replace(cmd, redirects=cmd.redirects + tuple(writes), opaque=opaque, needs_trust=bool(opaque)), *runs]
    shells = [v for key, v in values if key in ("-e", "--rsh")]
    if any(not v.known for v in shells):
        return [replace(cmd, opaque="rsync -e: the remote shell comes from an expansion", needs_trust=True)]
    return [cmd, *(c for v in shells for c in recurse(v.text, "via rsync -e"))]


def _ip(cmd: Command, recurse_cmd: Callable[[Command], list[Command]]) -> list[Command]:
    """``ip netns exec NS CMD`` (``-all`` without NS) and ``ip vrf exec VRF CMD`` run CMD."""
    args = cmd.argv[1:]
    every = False
    for i, a in enumerate(args[:-1]):
        every = every or (a.known and a.text in ("-a", "-al", "-all"))
        nxt = args[i + 1]
        netns = a.known and len(a.text) >= 3 and "netns".startswith(a.text)
        if (netns or (a.known and a.text == "vrf")) and nxt.known and nxt.text and "exec".startswith(nxt.text):
            rest = args[i + (2 if netns and every else 3):]
            return [cmd, *recurse_cmd(_inner(cmd, rest, f"via ip {a.text} exec"))] if rest else [cmd]
    return [cmd]


def _find(cmd: Command, recurse: Callable[[Command], list[Command]]) -> list[Command]:
    """find's ``-exec`` commands (``{}``: a path under find's start point), the files it writes."""
    args = cmd.argv
    fx = tools.effects("find", args[1:], more_args=cmd.open_args and "find" not in cmd.via)
    out = [replace(cmd, redirects=cmd.redirects + fx.writes, opaque=fx.opaque, needs_trust=bool(fx.opaque))]
    start = tools.start_prefix(args[1:])
    for i, a in enumerate(args):
        if a.known and a.text in ("-exec", "-execdir", "-ok", "-okdir"):
            found = start if a.text in ("-exec", "-ok") else ""
            inner: list[Word] = []
            for b in args[i + 1:]:
                if b.known and b.text in (";", "+"):
                    break
                if b.known and "{}" in b.text:
                    b = Word(found, False, found, "{}") if b.text == "{}" else Word("", False, "", "{}")
                inner.append(b)
            if not inner:
                raise Unparseable("find -exec without a command")
            out += recurse(Command(tuple(inner), open_args=True, via="via find -exec"))
    return out


def _tool(cmd: Command, name: str, recurse: Callable[[Command], list[Command]]) -> list[Command]:
    """tee/sort/uniq: the files they write become redirections; sort's ``--compress-program`` is judged."""
    fx = tools.effects(name, cmd.argv[1:], more_args=cmd.open_args and "find" not in cmd.via)
    out = replace(cmd, redirects=cmd.redirects + fx.writes, opaque=fx.opaque, needs_trust=bool(fx.opaque))
    return [out, *(c for opt, prog in fx.runs for c in recurse(Command((prog,), open_args=True, via=f"via {name} {opt}")))]


def _sed(cmd: Command, name: str) -> Command:
    """sed's ``w`` and ``-i`` files become the command's redirections; its ``e`` makes it opaque (only ``trust``
    lifts it)."""
    fx = sed.effects(cmd.argv[1:])
    if cmd.open_args and "find" not in cmd.via:
        fx = sed.Effects(opaque="sed gets more arguments at run time (xargs), which may be options or scripts")
    if fx.opaque:
        return replace(cmd, opaque=fx.opaque, needs_trust=True)
    out = replace(cmd, redirects=cmd.redirects + tuple(Word.literal(f) for f in fx.writes) + fx.edits)
    if fx.runs:
        return replace(out, opaque=f"{name}: {fx.runs}", needs_trust=True)
    return out


def _xargs_input(rest: tuple[Word, ...], values: list[tuple[str, Word]], opts: list[Word]) -> tuple[Word, ...]:
    """With ``-I R`` (``-i``, ``--replace``) xargs puts its input where R is: those words are unknown."""
    takes = _WRAPPERS["xargs"][0]
    marks = [v.text for k, v in values if k == "-I" and v.known]
    for o in opts:
        name, _, value = o.text.partition("=")
        if name.startswith("--"):
            marks += [value] if len(name) >= 4 and "--replace".startswith(name) else []
            continue
        for j, c in enumerate(o.text[1:], 1):
            if "-" + c in takes or c == "i":
                marks += [o.text[j + 1:]] if c == "i" else []
                break
    marks = [m or "{}" for m in marks]
    if not marks:
        return rest
    return tuple(Word(a.text.split(m)[0], False, a.text.split(m)[0], a.text)
                 if a.known and (m := next((m for m in marks if m in a.text), "")) else a for a in rest)


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

    def recurse_text(text: str, via: str, *, fresh: bool = True) -> list[Command]:
        """Commands in text that another shell runs (``fresh``: a new one, which may pin values: ``bindings``)."""
        return [x for c in parse(text, fresh=fresh) for x in expand(c.with_via(via), depth=depth + 1)]

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
        return [cmd, *recurse_text(" ".join(a.text for a in args), f"via {name}", fresh=False)]
    if name in ("source", "."):
        return [replace(cmd, opaque=f"{name} runs commands from a file the policy cannot read")]
    if name in ("alias", "unalias", "hash", "enable") and len(cmd.argv) > 1:
        return [replace(cmd, opaque=f"{name} changes what later command names run")]
    if name == "find":
        return _find(cmd, recurse_cmd)
    if name in tools.TOOLS:
        return _tool(cmd, name, recurse_cmd)
    if name in ("sed", "gsed"):
        return [_sed(cmd, name)]
    if name == "ssh":
        return _ssh(cmd, recurse_text, recurse_cmd)
    if name in ("scp", "sftp", "rsync"):
        return _copier(cmd, name, recurse_text, recurse_cmd)
    if name == "ip":
        return _ip(cmd, recurse_cmd)
    if name not in _WRAPPERS:
        return [cmd]
    if name == "command" and any(a.known and a.text in ("-v", "-V") for a in cmd.argv[1:2]):
        return [cmd]
    opts, rest, string, values = _split_options(name, cmd.argv[1:])
    if name == "su" or (name == "runuser" and not any(k in ("-u", "--user") for k, _ in values)):
        return _su(cmd, name, recurse_text)
    extra: list[Command] = []
    writes: list[Word] = []
    for key, v in values:
        if key in _WRITE_OPTS.get(name, ()):
            if name == "strace" and v.known and v.text[:1] in ("|", "!"):
                extra += recurse_text(v.text[1:], "via strace -o")  # strace pipes its trace into a command
            else:
                writes.append(v)
    outer = replace(cmd, redirects=cmd.redirects + tuple(writes))  # the wrapper's files, not the inner command's
    if string:
        return [outer, *extra, *recurse_text(string, f"via {name}")]
    _, skip = _WRAPPERS[name]
    if name == "watch" and rest and not any(o.text in ("-x", "--exec") for o in opts):
        if not all(a.known for a in rest):
            return [replace(cmd, opaque="watch: the command comes from an expansion")]
        return [cmd, *recurse_text(" ".join(a.text for a in rest), "via watch")]
    if name == "busybox" and rest and base(rest[0]) in ("sh", "ash", "hush"):
        return [cmd, *expand(_inner(cmd, rest, "via busybox"), depth=depth + 1)]
    if name == "flock" and len(rest) > 2 and rest[1].known and rest[1].text in ("-c", "--command"):
        if not rest[2].known:
            raise Unparseable("flock -c: the command string is not known before it runs")
        return [cmd, *recurse_text(rest[2].text, "via flock -c")]  # flock FILE -c CMD
    if name == "sudo" and any(o.text in ("-e", "--edit") for o in opts):
        return [replace(cmd, opaque="sudo -e runs an editor the policy cannot see")]
    if name == "xargs":
        rest = _xargs_input(rest, values, opts)
    rest = rest[skip:]
    if not rest:
        if (name in ("sudo", "doas", "su", "runuser") and any(
                o.text in ("-s", "-i", "--shell", "--login", "-l") for o in opts)) or name in _SHELL_WITHOUT_COMMAND:
            return [replace(cmd, opaque=f"{name} opens a shell reading commands the policy cannot see")]
        if name == "xargs":
            return [cmd, Command((Word.literal("echo"),), open_args=True, via="via xargs")]
        return [outer, *extra]
    if name in ("sudo", "doas") and any(o.text in ("-s", "-i", "--shell", "--login") for o in opts):
        if not all(a.known for a in rest):
            return [replace(cmd, opaque=f"{name} -s: the command comes from an expansion")]
        return [cmd, *recurse_text(" ".join(a.text for a in rest), f"via {name} -s")]
    inner = _inner(cmd, rest, f"via {name}", open_args=name == "xargs")
    return [outer, *extra, *expand(inner, depth=depth + 1)]


#: variables that change which program runs, what it loads or what it runs besides: setting one makes
#: the command opaque (``PATH=/tmp/x uptime`` is not the ``uptime`` an allow list means)
LOADER_VARS = frozenset({
    "PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "CDPATH",
    "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB",
    "NODE_OPTIONS", "NODE_PATH", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS",
    "EDITOR", "VISUAL", "PAGER", "MANPAGER", "SYSTEMD_PAGER", "GIT_PAGER", "LESSOPEN", "LESSCLOSE",
    "SUDO_EDITOR", "SUDO_ASKPASS", "SSH_ASKPASS", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_EXEC_PATH",
    "GIT_EDITOR", "GIT_ASKPASS", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_COUNT",
})
#: builtins whose ``NAME=value`` arguments set variables for the rest of the line
_SETTERS = frozenset({"export", "declare", "typeset", "local", "readonly", "env"})


def _loads(name: str) -> bool:
    return name in LOADER_VARS or name.startswith(("LD_", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))


def _set_names(cmd: Command) -> list[str]:
    """The variables ``cmd`` sets: before it, or as ``NAME=value`` arguments of export/env/declare/..."""
    names = list(cmd.assigns)
    if cmd.argv and cmd.name.known and base(cmd.name) in _SETTERS:
        for a in cmd.argv[1:]:
            if assignment(a):
                names.append(assignment(a))
            elif not a.known and base(cmd.name) != "env":
                names.append("(an expansion)")  # `export $X`: any variable at all
    return names


def _loader_check(cmd: Command) -> Command:
    risky = [n for n in _set_names(cmd) if _loads(n) or n == "(an expansion)"]
    if not risky or cmd.opaque:
        return cmd
    return replace(cmd, opaque=(f"it sets {', '.join(risky)}, which changes what runs or what it loads; "
                                "the policy cannot see that"), needs_trust=True)


def commands(text: str, *, fresh: bool = True) -> list[Command]:
    """Every command ``text`` runs, after unwrapping; Unparseable if any part cannot be read.

    ``fresh``: ``text`` is all a new shell runs (what a task sends), so values it pins hold (``bindings``).
    """
    return [_loader_check(x) for c in parse(text, fresh=fresh) for x in expand(c)]
