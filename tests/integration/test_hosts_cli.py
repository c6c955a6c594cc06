"""``small-yi hosts ...`` on a real SQLite database: in-process through Typer's runner, and once as the binary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from smallyi.cli.main import _register, app
from support import cli, write_config

CASES = Path(__file__).resolve().parents[1] / "cases" / "import"

_register()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def sy(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--config", str(config)], input=input)


def sy_json(config: Path, *args: str) -> Any:
    result = sy(config, *args, "--output", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_starts_with_the_local_host(config: Path) -> None:
    """A fresh database lists the built-in host local, as a table and as JSON."""
    result = sy(config, "hosts", "list")
    assert result.exit_code == 0
    assert "local" in result.stdout and "127.0.0.1" in result.stdout and "1 host(s)" in result.stdout
    assert [h["name"] for h in sy_json(config, "hosts", "list")["items"]] == ["local"]


def test_add_then_list_with_filters(config: Path) -> None:
    """hosts add registers a host (re-adding is unchanged); list filters by group and label."""
    args = ("hosts", "add", "web-1", "--address", "10.0.0.1", "--port", "2222", "--user", "deploy",
            "--group", "web", "--group", "prod", "--label", "env=prod", "--label", "tier=front")
    assert sy(config, *args).stdout.strip() == "host web-1 created"
    assert sy(config, *args).stdout.strip() == "host web-1 unchanged"
    assert sy(config, "hosts", "add", "db-1", "-a", "10.0.0.2", "-g", "db", "-l", "env=dev").exit_code == 0
    listed = sy_json(config, "hosts", "list", "--group", "prod")
    assert listed["total"] == 1
    assert listed["items"][0] == {
        "name": "web-1", "address": "10.0.0.1", "port": 2222, "user": "deploy",
        "labels": {"env": "prod", "tier": "front"}, "groups": ["prod", "web"], "description": "",
        "enabled": True, "connector": "ssh", "ssh": {},
    }
    assert [h["name"] for h in sy_json(config, "hosts", "list", "--label", "env=dev")["items"]] == ["db-1"]


def test_add_rejects_bad_input(config: Path) -> None:
    """Bad names, ports and labels end with a message naming the problem and exit status 2."""
    for args, message in (
        (("hosts", "add", "bad name", "-a", "10.0.0.1"), "host name 'bad name' is not valid"),
        (("hosts", "add", "h", "-a", "10.0.0.1", "--port", "0"), "port 0 is out of range"),
        (("hosts", "add", "h", "-a", "10.0.0.1", "-l", "novalue"), "label 'novalue' is not key=value"),
        (("hosts", "list", "--group", "nope"), "group 'nope' does not exist"),
    ):
        result = sy(config, *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)


def test_import_counts_and_is_idempotent(config: Path) -> None:
    """hosts import prints created/updated/unchanged counts; --group adds every host to a group."""
    source = CASES / "yaml-fleet" / "inventory.yaml"
    result = sy(config, "hosts", "import", str(source), "--group", "lab")
    assert result.exit_code == 0 and result.stdout.startswith("3 created, 0 updated, 0 unchanged")
    report = sy_json(config, "hosts", "import", str(source), "--group", "lab")
    assert report["counts"] == {"created": 0, "updated": 0, "unchanged": 3}
    groups = {g["name"]: g["host_count"] for g in sy_json(config, "hosts", "groups")["items"]}
    assert groups == {"fleet": 3, "lab": 3, "local": 1}


def test_import_with_explicit_format_and_dry_run(config: Path, tmp_path: Path) -> None:
    """--format reads a file whatever its name; --dry-run reports without saving."""
    data = tmp_path / "machines.txt"
    data.write_text((CASES / "csv-basic" / "hosts.csv").read_text())
    report = sy_json(config, "hosts", "import", str(data), "--format", "csv", "--dry-run")
    assert report["dry_run"] is True and report["counts"]["created"] == 4
    assert sy_json(config, "hosts", "list")["total"] == 1
    result = sy(config, "hosts", "import", str(data))
    assert result.exit_code == 2 and "--format" in result.stderr


def test_import_bad_file_lists_every_line_and_saves_nothing(config: Path) -> None:
    """A bad file prints every bad line, exits non-zero, and writes nothing (JSON lists the problems)."""
    source = CASES / "bad-csv" / "hosts.csv"
    result = sy(config, "hosts", "import", str(source))
    assert result.exit_code == 2
    for line in (3, 4, 5, 6, 7, 8, 9):
        assert f"line {line}:" in result.stderr
    failed = sy(config, "hosts", "import", str(source), "--output", "json")
    assert failed.exit_code == 2
    assert len(json.loads(failed.stdout)["error"]["problems"]) == 7
    assert sy_json(config, "hosts", "list")["total"] == 1


def test_import_from_stdin_needs_a_format(config: Path) -> None:
    """FILE '-' reads standard input, given --format."""
    text = "name,address\nfrom-stdin,10.9.9.9\n"
    assert sy(config, "hosts", "import", "-", input=text).exit_code == 2
    assert sy(config, "hosts", "import", "-", "--format", "csv", input=text).exit_code == 0
    assert sy_json(config, "hosts", "show", "from-stdin")["address"] == "10.9.9.9"


def test_set_show_remove(config: Path) -> None:
    """hosts set changes fields (and renames), show prints one host, remove deletes it."""
    sy(config, "hosts", "add", "web-1", "-a", "10.0.0.1")
    host = sy_json(config, "hosts", "set", "web-1", "--port", "2200", "--disable", "--rename", "web-01")
    assert (host["name"], host["port"], host["enabled"]) == ("web-01", 2200, False)
    assert "port:        2200" in sy(config, "hosts", "show", "web-01").stdout
    assert sy(config, "hosts", "set", "web-01").exit_code == 2
    assert sy(config, "hosts", "remove", "web-01").stdout.strip() == "host web-01 removed"
    result = sy(config, "hosts", "remove", "web-01")
    assert result.exit_code == 2 and "'web-01' is not in the inventory" in result.stderr


def test_groups_commands(config: Path) -> None:
    """hosts groups lists; create, add, remove, rename and delete manage groups and members."""
    sy(config, "hosts", "add", "a", "-a", "10.0.0.1")
    sy(config, "hosts", "add", "b", "-a", "10.0.0.2")
    assert sy(config, "hosts", "groups", "create", "canary", "--description", "early").exit_code == 0
    assert sy_json(config, "hosts", "groups", "add", "canary", "a", "b")["members"] == ["a", "b"]
    assert sy_json(config, "hosts", "groups", "remove", "canary", "b")["members"] == ["a"]
    result = sy(config, "hosts", "groups", "add", "canary", "zz")
    assert result.exit_code == 2 and "zz" in result.stderr
    assert sy(config, "hosts", "groups", "rename", "canary", "early-birds").exit_code == 0
    table = sy(config, "hosts", "groups").stdout
    assert "early-birds" in table and "early" in table and "canary" not in table
    assert sy(config, "hosts", "groups", "delete", "early-birds").exit_code == 0
    assert [g["name"] for g in sy_json(config, "hosts", "groups")["items"]] == ["local"]
    assert sy_json(config, "hosts", "show", "a")["groups"] == []


def test_binary_import_exit_status(config: Path) -> None:
    """The installed small-yi binary imports a good file (exit 0) and refuses a bad one (exit 2)."""
    good = cli("hosts", "import", str(CASES / "ini-fleet" / "inventory.ini"), config=config)
    assert good.returncode == 0 and "2 created" in good.stdout
    bad = cli("hosts", "import", str(CASES / "bad-yaml" / "inventory.yaml"), config=config)
    assert bad.returncode == 2 and "line 18:" in bad.stderr and "nothing was imported" in bad.stderr


def test_every_hosts_command_works_against_a_server(tmp_path: Path) -> None:
    """With --server and a token (no config, no database here) hosts and groups commands act on the
    server's inventory through its API, audited there; a bad import file is refused before sending."""
    from support import start_server

    srv = start_server(write_config(tmp_path))
    try:
        with srv.client() as c:
            token = c.post("/api/v1/auth/tokens", json={"name": "cli"}).json()["token"]
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()

        def remote(*args: str) -> Any:
            r = cli(*args, "--server", srv.url, "--token", token, "--output", "json", cwd=elsewhere)
            assert r.returncode == 0, r.stderr
            return json.loads(r.stdout)

        assert remote("hosts", "add", "web-1", "--address", "10.0.0.1", "--group", "web",
                      "--label", "env=prod")["counts"]["created"] == 1
        assert remote("hosts", "import", str(CASES / "ini-fleet" / "inventory.ini"), "--dry-run")["dry_run"]
        assert remote("hosts", "import", str(CASES / "ini-fleet" / "inventory.ini"),
                      "--group", "imported")["counts"]["created"] > 1
        listed = remote("hosts", "list", "--label", "env=prod")
        assert [h["name"] for h in listed["items"]] == ["web-1"] and listed["total"] == 1
        assert remote("hosts", "set", "web-1", "--port", "2200")["port"] == 2200
        assert remote("hosts", "show", "web-1")["groups"] == ["web"]
        assert remote("hosts", "groups", "add", "web", "host-001")["members"] == ["host-001", "web-1"]
        r = cli("hosts", "groups", "rename", "web", "frontend", "--server", srv.url, "--token", token)
        assert r.returncode == 0, r.stderr
        groups = {g["name"]: g["host_count"] for g in remote("hosts", "groups")["items"]}
        assert groups["frontend"] == 2 and "web" not in groups
        bad = cli("hosts", "import", str(CASES / "bad-csv" / "hosts.csv"), "--server", srv.url, "--token", token)
        assert bad.returncode == 2 and "line 3" in bad.stderr
        r = cli("hosts", "remove", "web-1", "--server", srv.url, "--token", token)
        assert r.returncode == 0, r.stderr
        missing = cli("hosts", "show", "web-1", "--server", srv.url, "--token", token)
        assert missing.returncode == 2 and "web-1" in missing.stderr
        assert cli("hosts", "list", "--server", srv.url).returncode == 2  # no token: refused, says why
        with srv.client() as c:
            assert c.get("/api/v1/hosts/host-001").json()["groups"] == ["fleet", "frontend", "imported"]
            calls = {a["target"] for a in c.get("/api/v1/audit", params={"action": "api.call", "actor": "admin",
                                                                         "limit": 500}).json()["items"]}
        assert not (elsewhere / "data").exists()
        assert {"POST /api/v1/hosts", "POST /api/v1/hosts/import", "PATCH /api/v1/hosts/web-1",
                "DELETE /api/v1/hosts/web-1", "PATCH /api/v1/groups/web", "POST /api/v1/groups/web/members"} <= calls
    finally:
        srv.stop()


def test_errors_print_user_text_as_it_is(config: Path) -> None:
    """An error quoting user input shows it verbatim: no Rich markup ([red]) or emoji codes (:one:) applied."""
    result = sy(config, "hosts", "show", "web:one:[red]x[/]")
    assert result.exit_code == 2
    assert "web:one:[red]x[/]" in result.stderr, result.stderr
