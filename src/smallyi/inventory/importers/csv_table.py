"""CSV with a header row: ``name,address,port,user,groups,labels`` (plus optional description, enabled).

Only ``name`` and ``address`` are required, columns may come in any order. Several groups or labels
in one cell are separated by ``;`` or ``|``: ``web;prod``, ``env=prod;tier=front``. Blank lines and
lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import csv
import io

from smallyi.inventory.hosts import SSH_OVERRIDES, HostSpec
from smallyi.inventory.importers.fields import HOST_KEYS, Problems, check_duplicates, make_spec

#: a host's SSH settings are columns of their own: ``ssh.private_key``, ``ssh.connect_timeout``...
COLUMNS = (*(k for k in HOST_KEYS if k != "ssh"), *(f"ssh.{k}" for k in SSH_OVERRIDES))

REQUIRED = ("name", "address")


def parse(text: str, source: str = "hosts.csv") -> list[HostSpec]:
    problems = Problems(source)
    entries: list[tuple[int, HostSpec]] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), skipinitialspace=True)
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = _header(row, line, problems)
                if header is None:
                    break
                continue
            if len(row) != len(header):
                problems.add(line, f"expected {len(header)} fields ({','.join(header)}), found {len(row)}")
                continue
            raw: dict[str, object] = {}
            ssh: dict[str, str] = {}
            for k, v in zip(header, row, strict=True):
                if k.startswith("ssh."):
                    if v.strip():
                        ssh[k.removeprefix("ssh.")] = v.strip()
                else:
                    raw[k] = v.strip()
            raw["ssh"] = ssh
            spec, bad = make_spec(raw)
            who = f"host {raw['name']!r}: " if raw.get("name") else ""
            for fld, message in bad:
                problems.add(line, message if fld == "name" else who + message)
            if spec is not None:
                entries.append((line, spec))
    except csv.Error as exc:
        problems.add(reader.line_num, f"CSV cannot be read: {exc}")
    if header is None and not problems.items:
        problems.add(0, "no header row: the first line must name the columns, e.g. name,address,port,user")
    check_duplicates(entries, problems)
    problems.raise_if_any()
    return [spec for _, spec in entries]


def _header(row: list[str], line: int, problems: Problems) -> list[str] | None:
    header = [c.strip().lower() for c in row]
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if unknown:
        names = ", ".join(map(repr, unknown))
        problems.add(line, f"unknown column(s) {names}; the columns are {', '.join(COLUMNS)}")
    if missing:
        problems.add(line, f"the header has no {' or '.join(missing)} column; it must name the columns, "
                     "e.g. name,address,port,user")
    if repeated:
        problems.add(line, f"column(s) {', '.join(repeated)} given twice")
    return None if unknown or missing or repeated else header
