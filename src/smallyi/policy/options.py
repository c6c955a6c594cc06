"""Long options and their short letters, per command, so deny patterns see through spelling. Pure.

``rm -r /``, ``rm -R /``, ``rm --recursive /`` and ``rm --recur /`` (GNU tools take any unambiguous
prefix of a long option) are the same command; a pattern written either way matches all of them.
Only options that do not take a value are listed: they are what destructive patterns name.

:data:`DANGEROUS` lists options that turn a tool an allow list admits as harmless (``find *``,
``journalctl *``) into one that deletes or changes things; an allow pattern admits them only by naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from smallyi.policy.shell import Word

#: command → {long option: the short letter it means}
LONG: Mapping[str, Mapping[str, str]] = {
    "rm": {"--recursive": "r", "--force": "f", "--dir": "d", "--interactive": "i", "--verbose": "v",
           "--no-preserve-root": "", "--one-file-system": ""},
    "cp": {"--recursive": "r", "--force": "f", "--archive": "a", "--link": "l", "--symbolic-link": "s",
           "--remove-destination": "", "--dereference": "L", "--no-dereference": "P"},
    "mv": {"--force": "f", "--interactive": "i", "--no-clobber": "n"},
    "ln": {"--force": "f", "--symbolic": "s"},
    "chmod": {"--recursive": "R", "--changes": "c", "--verbose": "v", "--silent": "f", "--quiet": "f"},
    "chown": {"--recursive": "R", "--changes": "c", "--verbose": "v", "--silent": "f", "--quiet": "f"},
    "chgrp": {"--recursive": "R", "--changes": "c", "--verbose": "v", "--silent": "f", "--quiet": "f"},
    "shutdown": {"--reboot": "r", "--halt": "H", "--poweroff": "P", "--no-wall": ""},
    "umount": {"--force": "f", "--lazy": "l", "--all": "a", "--recursive": "R"},
    "iptables": {"--flush": "F", "--delete-chain": "X", "--zero": "Z", "--list": "L"},
    "ip6tables": {"--flush": "F", "--delete-chain": "X", "--zero": "Z", "--list": "L"},
    "userdel": {"--remove": "r", "--force": "f"},
    "crontab": {"--remove": "r"},
    "sed": {"--in-place": "i", "--quiet": "n", "--silent": "n", "--regexp-extended": "E", "--separate": "s"},
    "git": {"--force": "f"},
    "wipefs": {"--all": "a", "--force": "f"},
    "swapoff": {"--all": "a"},
    "systemctl": {"--force": "f"},
}

#: command → {short letter: the letter it is the same as} (``rm -R`` is ``rm -r``)
SAME: Mapping[str, Mapping[str, str]] = {
    "rm": {"R": "r"},
    "cp": {"R": "r"},
    "sed": {"r": "E"},
}


def long_letter(command: str, word: str) -> str | None:
    """The short letter a long option (or any prefix of one GNU accepts) stands for; "" for a known long
    option without a letter; None if ``word`` is not a listed long option of ``command``.

    A prefix that several listed options share counts as the first (deny patterns err on the side of
    matching).
    """
    table = LONG.get(command)
    if not table or not word.startswith("--") or len(word) < 3:
        return None
    name = word.split("=", 1)[0]
    if name in table:
        return table[name]
    for full, letter in table.items():
        if full.startswith(name):
            return letter
    return None


def same(command: str, letters: str) -> set[str]:
    """Short letters with their synonyms folded (``R`` → ``r`` for rm)."""
    table = SAME.get(command, {})
    return {table.get(c, c) for c in letters}


#: commands whose options are whole words (``find -delete`` is not ``-d -e -l ...``)
WORDS = frozenset({"find"})

#: command → {option: what it does}: options that delete or change things, which an allow pattern admits only
#: if it names them (``find /tmp/* -delete``), never through ``*``. Options that write a file count as writes
#: instead (``sort -o``, ``find -fprint``: ``policy/tools.py``), options that run a program are judged as that
#: program (``find -exec``, ``sort --compress-program``).
DANGEROUS: Mapping[str, Mapping[str, str]] = {
    "find": {"-delete": "deletes every file it finds"},
    "journalctl": {"--vacuum-size": "deletes archived journal files", "--vacuum-time": "deletes archived journal files",
                   "--vacuum-files": "deletes archived journal files", "--rotate": "archives the active journal files",
                   "--flush": "moves the journal to /var", "--relinquish-var": "moves the journal off /var",
                   "--smart-relinquish-var": "moves the journal off /var", "--setup-keys": "writes a new sealing key",
                   "--update-catalog": "rewrites the message catalog"},
}


def dangerous(command: str, args: Sequence[Word]) -> list[tuple[int, str, str]]:
    """(index, the option as written, what it does) for each of ``args`` that is a dangerous option of
    ``command``. An argument from an expansion that may be an option counts too (it may be any of them)."""
    table = DANGEROUS.get(command)
    if not table:
        return []
    out: list[tuple[int, str, str]] = []
    for i, a in enumerate(args):
        if not a.known:
            if a.prefix == "" or a.prefix.startswith("-"):
                opt, why = next(iter(table.items()))
                out.append((i, a.show(), f"may be {opt}, which {why}"))
            continue
        name = a.text.split("=", 1)[0]
        for opt, why in table.items():
            if name == opt or (command not in WORDS and len(name) >= 3 and name.startswith("--")
                               and opt.startswith(name)):
                out.append((i, name, why))
                break
    return out
