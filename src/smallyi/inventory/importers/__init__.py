"""Inventory file importers: text in, ``list[HostSpec]`` out, or ImportFileError listing every bad line.

One module per format; ``parse_inventory`` picks one from ``format`` or the file name. Pure: nothing
here reads files or touches the database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from smallyi.errors import ImportFileError, InputError
from smallyi.inventory.hosts import HostSpec
from smallyi.inventory.importers import ansible_ini, ansible_yaml, csv_table, native_yaml, ssh_config
from smallyi.inventory.importers import yaml_nodes as yn
from smallyi.inventory.importers.fields import Problems

Parser = Callable[[str, str], list[HostSpec]]

#: format name → parser; "yaml" is small-yi's own
FORMATS: dict[str, Parser] = {
    "yaml": native_yaml.parse,
    "csv": csv_table.parse,
    "ini": ansible_ini.parse,
    "ansible-yaml": ansible_yaml.parse,
    "ssh_config": ssh_config.parse,
}
ALIASES = {
    "yml": "yaml", "ansible": "ini", "ansible-ini": "ini", "cfg": "ini", "ansible-yml": "ansible-yaml",
    "ssh": "ssh_config", "ssh-config": "ssh_config",
}
_BY_SUFFIX = {
    ".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".ini": "ini", ".cfg": "ini", ".conf": "ssh_config",
}
_BY_NAME = {"config": "ssh_config", "ssh_config": "ssh_config", "hosts": "ini"}


def format_names() -> str:
    return "|".join(FORMATS)


def normalize_format(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise InputError(f"unknown inventory format {name!r}; use one of {format_names()}", field="format")
    return key


def detect_format(filename: str, text: str | None = None) -> str:
    """The format a file name implies; for YAML, the text tells ours from Ansible's."""
    path = PurePath(filename)
    fmt = _BY_SUFFIX.get(path.suffix.lower()) or _BY_NAME.get(path.name.lower())
    if fmt is None:
        raise InputError(
            f"cannot tell the format of {path.name!r} from its name; pass --format {format_names()}",
            field="format",
        )
    if fmt == "yaml" and text is not None and _looks_like_ansible(text):
        return "ansible-yaml"
    return fmt


def _looks_like_ansible(text: str) -> bool:
    """True when the top is groups of hosts/vars/children rather than our ``hosts:`` list."""
    root = yn.compose(text, Problems("probe"))
    if not isinstance(root, yn.MappingNode) or not root.value:
        return False
    for key_node, value_node in root.value:
        if key_node.value in ("group", "groups") or (
            key_node.value == "hosts" and isinstance(value_node, yn.SequenceNode)
        ):
            return False
        if not (isinstance(value_node, yn.MappingNode) or value_node.tag.endswith(":null")):
            return False
    return True


def parse_inventory(text: str, *, format: str | None = None, source: str = "upload") -> list[HostSpec]:
    """Hosts from an inventory file's text; ``format`` wins over what ``source``'s name implies."""
    fmt = normalize_format(format) if format else detect_format(source, text)
    hosts = FORMATS[fmt](text, source)
    if not hosts:
        hint = f"no hosts found (read as {fmt}); is this the right file and --format?"
        raise ImportFileError(source, [hint])
    return hosts
