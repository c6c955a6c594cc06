"""Long options and their short letters, per command, so deny patterns see through spelling. Pure.

``rm -r /``, ``rm -R /``, ``rm --recursive /`` and ``rm --recur /`` (GNU tools take any unambiguous
prefix of a long option) are the same command; a pattern written either way matches all of them.
Only options that do not take a value are listed: they are what destructive patterns name.
"""

from __future__ import annotations

from collections.abc import Mapping

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
