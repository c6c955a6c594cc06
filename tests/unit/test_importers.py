"""Inventory importers, driven by the data files under tests/cases/import/.

Each case folder holds one input file (its name drives format detection) and ``expected.json``:
``{"hosts": [...]}`` for a good file, ``{"errors": [[line, "text in the message"], ...]}`` for a bad
one (every problem, in order), and optionally ``"format"`` to pass explicitly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smallyi.errors import ImportFileError, InputError
from smallyi.inventory.importers import detect_format, normalize_format, parse_inventory
from smallyi.inventory.service import host_dict

CASES = Path(__file__).resolve().parents[1] / "cases" / "import"


def _cases(kind: str) -> list[Path]:
    return sorted(d for d in CASES.iterdir() if d.is_dir() and d.name.startswith("bad-") == (kind == "bad"))


def _load(case: Path) -> tuple[Path, dict[str, Any]]:
    [source] = [p for p in case.iterdir() if p.name != "expected.json"]
    return source, json.loads((case / "expected.json").read_text())


def _dicts(text: str, source: str, fmt: str | None = None) -> list[dict[str, Any]]:
    hosts = parse_inventory(text, format=fmt, source=source)
    # a host's SSH settings are listed in expected.json only where it has some
    return [{k: v for k, v in host_dict(h).items() if k != "connector" and (k != "ssh" or v)} for h in hosts]


@pytest.mark.parametrize("case", _cases("good"), ids=lambda p: p.name)
def test_good_file(case: Path) -> None:
    """A valid inventory file gives exactly the expected hosts, in file order."""
    source, expected = _load(case)
    assert _dicts(source.read_text(), source.name, expected.get("format")) == expected["hosts"]


@pytest.mark.parametrize("case", _cases("bad"), ids=lambda p: p.name)
def test_bad_file_names_every_line(case: Path) -> None:
    """A bad inventory file raises ImportFileError listing every problem with its line number."""
    source, expected = _load(case)
    with pytest.raises(ImportFileError) as info:
        parse_inventory(source.read_text(), format=expected.get("format"), source=source.name)
    problems = info.value.problems
    assert len(problems) == len(expected["errors"]), problems
    for problem, (line, text) in zip(problems, expected["errors"], strict=True):
        if line:
            assert problem.startswith(f"line {line}: "), problem
        assert text in problem, problem
    assert source.name in info.value.message and "nothing was imported" in info.value.message


def test_fleet_files_agree() -> None:
    """The YAML and INI inventories of the test fleet describe the same hosts."""
    yaml_case, _ = _load(CASES / "yaml-fleet")
    ini_case, _ = _load(CASES / "ini-fleet")
    from_yaml = _dicts(yaml_case.read_text(), yaml_case.name)[:2]
    from_ini = _dicts(ini_case.read_text(), ini_case.name)
    # the INI (written for Ansible) names the fleet's key; small-yi's YAML leaves it to the config
    assert {h.pop("ssh")["private_key"] for h in from_ini} == {"/tmp/small-yi-fleet/id_ed25519"}
    assert from_ini == from_yaml


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [
        ("inventory.yaml", "yaml"), ("hosts.YML", "yaml"), ("hosts.csv", "csv"), ("inventory.ini", "ini"),
        ("ansible.cfg", "ini"), ("hosts", "ini"), ("config", "ssh_config"), ("/home/u/.ssh/ssh_config", "ssh_config"),
    ],
)
def test_detect_format_by_name(filename: str, fmt: str) -> None:
    """The file name's extension (or well-known name) picks the format."""
    assert detect_format(filename) == fmt


def test_detect_ansible_yaml_by_content() -> None:
    """A .yml file whose top level is groups of hosts/vars/children is read as an Ansible inventory."""
    assert detect_format("hosts.yml", "all:\n  hosts:\n    a:\n") == "ansible-yaml"
    assert detect_format("hosts.yml", "group: g\nhosts:\n  - {name: a, address: b}\n") == "yaml"


def test_unknown_name_asks_for_format() -> None:
    """A file name that implies no format gives an InputError that suggests --format."""
    with pytest.raises(InputError, match="--format") as info:
        detect_format("inventory.txt")
    assert info.value.field == "format"


def test_explicit_format_wins_over_name() -> None:
    """--format overrides the extension: CSV text in a .txt file imports as CSV."""
    hosts = parse_inventory("name,address\na,10.0.0.1\n", format="csv", source="hosts.txt")
    assert [h.name for h in hosts] == ["a"]


def test_format_aliases_and_unknown_format() -> None:
    """Format names accept common aliases; an unknown one lists the valid names."""
    assert normalize_format("Ansible") == "ini" and normalize_format("yml") == "yaml"
    with pytest.raises(InputError, match="yaml|csv"):
        normalize_format("xml")


def test_ini_children_cycle_is_reported() -> None:
    """Groups that are each other's children are an error, not an endless loop."""
    text = "[a:children]\nb\n[b:children]\na\n[a]\nh1\n"
    with pytest.raises(ImportFileError, match="cycle"):
        parse_inventory(text, format="ini", source="inv.ini")


def test_ini_numeric_range_with_step_and_width() -> None:
    """web[01:05:2] expands with zero padding and a stride, as in Ansible."""
    hosts = parse_inventory("[w]\nweb[01:05:2]\n", format="ini", source="inv.ini")
    assert [h.name for h in hosts] == ["web01", "web03", "web05"]


def test_ssh_config_first_value_wins() -> None:
    """As in ssh, a value given earlier (here by Host *) is not overridden by a later block."""
    text = "Host *\n  User first\nHost a\n  User second\n  HostName 10.0.0.1\n"
    [host] = parse_inventory(text, format="ssh_config", source="config")
    assert (host.user, host.address) == ("first", "10.0.0.1")


def test_large_csv_parses_quickly() -> None:
    """Ten thousand CSV rows parse into ten thousand hosts."""
    text = "name,address\n" + "".join(f"h{i},10.{i // 65536}.{i // 256 % 256}.{i % 256}\n" for i in range(10_000))
    assert len(parse_inventory(text, source="big.csv")) == 10_000


DOC = Path(__file__).resolve().parents[2] / "docs" / "inventory.md"


def _doc_examples() -> list[tuple[str, str]]:
    """(file name, text) of every fenced block in docs/inventory.md whose info string names a file."""
    import re

    blocks = re.findall(r"^```\w+ (\S+)\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)
    return [(name, text) for name, text in blocks]


def test_docs_examples_import() -> None:
    """Every example file in docs/inventory.md imports without error, its format told by its name."""
    examples = dict(_doc_examples())
    assert set(examples) == {"inventory.yaml", "sections.yaml", "hosts.csv", "edge.csv", "inventory.ini", "hosts.yml",
                             "config"}
    counts = {name: len(parse_inventory(text, source=name)) for name, text in examples.items()}
    assert counts == {"inventory.yaml": 3, "sections.yaml": 3, "hosts.csv": 3, "edge.csv": 2, "inventory.ini": 6,
                      "hosts.yml": 4, "config": 3}
    own = {h.name: h.ssh.to_dict() for h in parse_inventory(examples["inventory.yaml"], source="inventory.yaml")}
    assert own["db-01"] == {"private_key_secret": "db-key", "host_key_policy": "accept-new", "connect_timeout": 2.0}
    edge = {h.name: h.ssh.to_dict() for h in parse_inventory(examples["edge.csv"], source="edge.csv")}
    assert edge == {"edge-1": {"private_key_secret": "edge-key", "connect_timeout": 3.0},
                    "edge-2": {"host_key_policy": "accept-new"}}
    ssh = {h.name: (h.address, h.port, h.user) for h in parse_inventory(examples["config"], source="config")}
    assert ssh == {"web1": ("web1.internal.example.com", 22, "deploy"),
                   "web2": ("web2.internal.example.com", 22, "deploy"), "db": ("10.0.2.1", 5432, "ops")}
    ini = {h.name: h for h in parse_inventory(examples["inventory.ini"], source="inventory.ini")}
    assert ini["web01.example.com"].groups == ("web", "prod") and ini["legacy"].port == 2200
    assert ini["db-1"].labels == {"role": "primary", "env": "prod"} and ini["bastion"].port == 22
