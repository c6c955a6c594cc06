"""``small-yi hosts``: list, show, add, set, remove, import; ``small-yi hosts groups`` for groups.

These commands work in-process on the configured database (no server needed), like ``run``, or on a
running server's API with ``--server URL --token T`` (or ``SMALLYI_SERVER`` / ``SMALLYI_TOKEN``): the
same command code over ``cli.remote_inventory.RemoteInventory``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from smallyi.cli.common import (
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    ServerOpt,
    TokenOpt,
    console,
    fail,
    plain,
    print_json,
    run,
    settings,
)
from smallyi.cli.helptext import typer_app
from smallyi.errors import ImportFileError, SmallYiError

if TYPE_CHECKING:
    from smallyi.cli.remote_inventory import RemoteInventory
    from smallyi.inventory.hosts import HostSpec
    from smallyi.inventory.service import ImportReport, InventoryService

    Inventory = InventoryService | RemoteInventory

T = TypeVar("T")

GroupsOpt = Annotated[list[str] | None, typer.Option("--group", "-g", help="group; repeat for several")]
LabelsOpt = Annotated[list[str] | None, typer.Option("--label", "-l", help="key=value; repeat for several")]
KeyOpt = Annotated[str | None, typer.Option(
    "--private-key", help="this host's key file on the server (instead of the config's ssh.private_key)")]
KeySecretOpt = Annotated[str | None, typer.Option(
    "--private-key-secret", help="a stored secret holding this host's key (small-yi secrets set NAME --kind ssh-key)")]
KnownHostsOpt = Annotated[str | None, typer.Option("--known-hosts", help="this host's known_hosts file")]
PolicyOpt = Annotated[str | None, typer.Option("--host-key-policy", help="strict, accept-new or off, for this host")]
ConnectTimeoutOpt = Annotated[str | None, typer.Option("--connect-timeout", help="e.g. 5s, for this host")]


async def _with_inventory(config: str | None, fn: Callable[[Inventory], Awaitable[T]],
                          server: str | None = None, token: str | None = None) -> T:
    """Open the configured database (migrating it), run ``fn`` on the inventory, close it; with
    ``server``, run ``fn`` on that server's inventory instead (no config or database needed)."""
    if server:
        from smallyi.cli.client import Client
        from smallyi.cli.remote_inventory import RemoteInventory

        async with Client(server, token) as client:
            return await fn(RemoteInventory(client))
    from smallyi.inventory.service import InventoryService
    from smallyi.storage.db import open_database

    db = await open_database(settings(config))
    try:
        inventory = InventoryService(db)
        await inventory.ensure_local_host()
        return await fn(inventory)
    finally:
        await db.close()


def _labels(values: list[str] | None) -> dict[str, str]:
    """``--label k=v`` flags as a mapping; a malformed one ends the command with its message."""
    from smallyi.errors import InputError
    from smallyi.inventory.hosts import parse_label

    try:
        return dict(parse_label(v) for v in values or [])
    except InputError as exc:
        fail(exc.message)
        raise


def _ssh_flags(**flags: str | None) -> dict[str, str]:
    """The ``--private-key``... flags given (an empty value: back to the config's setting)."""
    return {k: v for k, v in flags.items() if v is not None}


def _ssh(values: dict[str, Any]) -> Any:
    """SSHOverrides from flag values; a bad one ends the command with its message."""
    from smallyi.inventory.importers.fields import parse_ssh

    own, problems = parse_ssh({k: v for k, v in values.items() if v != ""})
    if problems:
        fail("; ".join(problems))
    return own


def _host_table(hosts: list[HostSpec]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("NAME", "ADDRESS", "PORT", "USER", "GROUPS", "LABELS", ""):
        table.add_column(col, overflow="fold")
    for h in hosts:
        table.add_row(
            plain(h.name), plain(h.address), str(h.port), plain(h.user or "-"), plain(",".join(h.groups) or "-"),
            plain(" ".join(f"{k}={v}" for k, v in h.labels.items()) or "-"), "" if h.enabled else "disabled",
        )
    return table


def _report_text(report: dict[str, Any], *, dry_run: bool = False) -> None:
    counts = report["counts"]
    verb = "would be " if dry_run else ""
    console.print(
        f"{counts['created']} {verb}created, {counts['updated']} {verb}updated, "
        f"{counts['unchanged']} unchanged" + (" (dry run: nothing was saved)" if dry_run else "")
    )
    for kind in ("created", "updated"):
        names = report[kind]
        if names:
            shown = ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")
            console.print(plain(f"  {kind}: {shown}"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    hosts_app = typer_app(help="Hosts and groups of the inventory.", no_args_is_help=True)
    app.add_typer(hosts_app, name="hosts")
    groups_app = typer_app(help="Groups: list them (the default), create, rename, delete, add, remove.")
    hosts_app.add_typer(groups_app, name="groups")
    _register_hosts(hosts_app)
    _register_groups(groups_app)


def _register_hosts(hosts_app: typer.Typer) -> None:
    from smallyi.inventory.service import host_dict

    @hosts_app.command("list")
    def list_(
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
        group: Annotated[str | None, typer.Option("--group", "-g", help="only this group")] = None,
        label: LabelsOpt = None,
        search: Annotated[str | None, typer.Option(help="text in the name, address or description")] = None,
        output: OutputOpt = OutputFormat.text,
    ) -> None:
        """List hosts by name, filtered by group, labels (all must match) and search text."""
        labels = _labels(label)
        hosts, total = run(lambda: _with_inventory(
            config, lambda inv: inv.list_hosts(group=group, labels=labels, search=search), server, token))
        if output is OutputFormat.json:
            print_json({"items": [host_dict(h) for h in hosts], "total": total})
            return
        if hosts:
            console.print(_host_table(hosts))
        console.print(f"{total} host(s)")

    @hosts_app.command()
    def show(name: str, config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
             output: OutputOpt = OutputFormat.text) -> None:
        """Show one host."""
        host = run(lambda: _with_inventory(config, lambda inv: inv.get_host(name), server, token))
        if output is OutputFormat.json:
            print_json(host_dict(host))
            return
        for key, value in host_dict(host).items():
            if isinstance(value, dict):
                value = " ".join(f"{k}={v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ",".join(value)
            console.print(plain(f"{key + ':':13}{value}"), soft_wrap=True)

    @hosts_app.command()
    def add(
        name: str,
        address: Annotated[str, typer.Option("--address", "-a", help="host name or IP to connect to")],
        port: Annotated[int, typer.Option(help="SSH port")] = 22,
        user: Annotated[str, typer.Option(help="login user (default: the config's ssh.user)")] = "",
        group: GroupsOpt = None,
        label: LabelsOpt = None,
        description: Annotated[str, typer.Option(help="free text")] = "",
        disabled: Annotated[bool, typer.Option("--disabled", help="register it disabled")] = False,
        private_key: KeyOpt = None, private_key_secret: KeySecretOpt = None, known_hosts: KnownHostsOpt = None,
        host_key_policy: PolicyOpt = None, connect_timeout: ConnectTimeoutOpt = None,
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
        output: OutputOpt = OutputFormat.text,
    ) -> None:
        """Add a host, or replace the host of that name (its groups, labels and SSH settings become the
        given ones)."""
        from smallyi.inventory.hosts import HostSpec

        labels = _labels(label)
        own = _ssh(_ssh_flags(private_key=private_key, private_key_secret=private_key_secret,
                              known_hosts=known_hosts, host_key_policy=host_key_policy,
                              connect_timeout=connect_timeout))
        spec = HostSpec(name=name, address=address, port=port, user=user, labels=labels,
                        groups=tuple(group or ()), description=description, enabled=not disabled, ssh=own)
        report = run(lambda: _with_inventory(
            config, lambda inv: inv.upsert([spec], source="manual"), server, token))
        if output is OutputFormat.json:
            print_json(report.to_dict())
            return
        state = "created" if report.created else "updated" if report.updated else "unchanged"
        console.print(plain(f"host {name} {state}"))

    @hosts_app.command("set")
    def set_(
        name: str,
        address: Annotated[str | None, typer.Option("--address", "-a")] = None,
        port: Annotated[int | None, typer.Option()] = None,
        user: Annotated[str | None, typer.Option()] = None,
        new_name: Annotated[str | None, typer.Option("--rename", help="new name for the host")] = None,
        label: Annotated[list[str] | None, typer.Option(
            "--label", "-l", help="key=value; replaces all labels; repeat for several")] = None,
        description: Annotated[str | None, typer.Option()] = None,
        enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="take part in runs or not")] = None,
        private_key: KeyOpt = None, private_key_secret: KeySecretOpt = None, known_hosts: KnownHostsOpt = None,
        host_key_policy: PolicyOpt = None, connect_timeout: ConnectTimeoutOpt = None,
        ssh_defaults: Annotated[bool, typer.Option(
            "--ssh-defaults", help="drop every SSH setting of this host: use the config's")] = False,
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
        output: OutputOpt = OutputFormat.text,
    ) -> None:
        """Change some fields of a host; the others keep their value.

        An SSH flag changes that one setting (``--connect-timeout ""`` goes back to the config's);
        ``--private-key`` and ``--private-key-secret`` replace each other.
        """
        fields: dict[str, Any] = {k: v for k, v in {
            "address": address, "port": port, "user": user, "name": new_name, "description": description,
            "enabled": enabled,
        }.items() if v is not None}
        if label is not None:
            fields["labels"] = _labels(label)
        ssh = _ssh_flags(private_key=private_key, private_key_secret=private_key_secret, known_hosts=known_hosts,
                         host_key_policy=host_key_policy, connect_timeout=connect_timeout)
        if not fields and not ssh and not ssh_defaults:
            fail("nothing to change: give --address, --port, --user, --rename, --label, --description, "
                 "--enable/--disable, an SSH setting (--private-key...) or --ssh-defaults")

        async def change(inv: Inventory) -> HostSpec:
            if ssh or ssh_defaults:
                current = {} if ssh_defaults else (await inv.get_host(name)).ssh.to_dict()
                if "private_key" in ssh or "private_key_secret" in ssh:
                    current.pop("private_key", None)
                    current.pop("private_key_secret", None)
                fields["ssh"] = _ssh({**current, **ssh})
            return await inv.update_host(name, **fields)

        host = run(lambda: _with_inventory(config, change, server, token))
        if output is OutputFormat.json:
            print_json(host_dict(host))
        else:
            console.print(plain(f"host {host.name} updated"))

    @hosts_app.command()
    def remove(name: str, config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None) -> None:
        """Remove a host from the inventory (its archived results stay)."""
        run(lambda: _with_inventory(
            config, lambda inv: inv.delete_host(name), server, token))
        console.print(plain(f"host {name} removed"))

    @hosts_app.command("import")
    def import_(
        file: Annotated[str, typer.Argument(help="inventory file, or - for standard input")],
        group: GroupsOpt = None,
        format: Annotated[str | None, typer.Option(
            "--format", "-f", help="yaml|csv|ini|ansible-yaml|ssh_config (default: from the file name)")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="check and report, save nothing")] = False,
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
        output: OutputOpt = OutputFormat.text,
    ) -> None:
        """Import hosts from a file, all or nothing: every bad line is listed and nothing is saved."""
        from smallyi.inventory.importers import parse_inventory

        if file == "-":
            text, source = sys.stdin.read(), "stdin"
            if not format:
                fail("reading standard input: give --format yaml|csv|ini|ansible-yaml|ssh_config")
        else:
            path = Path(file)
            try:
                text, source = path.read_text(encoding="utf-8"), str(path)
            except FileNotFoundError:
                fail(f"{file}: no such file")
            except (OSError, UnicodeDecodeError) as exc:
                fail(f"{file} cannot be read: {exc}")
        try:
            specs = parse_inventory(text, format=format, source=source)
        except SmallYiError as exc:
            if output is OutputFormat.json:
                problems = exc.problems if isinstance(exc, ImportFileError) else [exc.message]
                print_json({"error": {"code": exc.code, "message": exc.message, "problems": problems}})
                raise typer.Exit(2) from None
            fail(exc.message)
        groups = group or ()

        def save(inv: Inventory) -> Awaitable[ImportReport]:
            from smallyi.cli.remote_inventory import RemoteInventory

            if isinstance(inv, RemoteInventory):  # checked here (line numbers), parsed again by the server
                return inv.import_text(text, format=format, filename=Path(source).name, default_groups=groups,
                                       dry_run=dry_run)
            return inv.upsert(specs, source="import", default_groups=groups, dry_run=dry_run)

        report = run(lambda: _with_inventory(config, save, server, token))
        if output is OutputFormat.json:
            print_json({**report.to_dict(), "dry_run": dry_run})
        else:
            _report_text(report.to_dict(), dry_run=dry_run)


def _register_groups(groups_app: typer.Typer) -> None:
    @groups_app.callback(invoke_without_command=True)
    def groups(ctx: typer.Context, config: ConfigOpt = None, output: OutputOpt = OutputFormat.text,
               server: ServerOpt = None, token: TokenOpt = None) -> None:
        """List groups with their host counts."""
        if ctx.invoked_subcommand is not None:
            ctx.obj = (config, server, token)
            return
        infos = run(lambda: _with_inventory(config, lambda inv: inv.list_groups(), server, token))
        if output is OutputFormat.json:
            print_json({"items": [g.to_dict() for g in infos], "total": len(infos)})
            return
        table = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("GROUP", "HOSTS", "DESCRIPTION"):
            table.add_column(col)
        for g in infos:
            table.add_row(plain(g.name), str(g.host_count), plain(g.description))
        console.print(table)

    def on(ctx: typer.Context, config: str | None, server: str | None, token: str | None,
           fn: Callable[[Inventory], Awaitable[T]]) -> T:
        """Run ``fn`` on the inventory that the options here or before the subcommand name."""
        outer = ctx.obj if isinstance(ctx.obj, tuple) else (None, None, None)
        return run(lambda: _with_inventory(config or outer[0], fn, server or outer[1], token or outer[2]))

    @groups_app.command()
    def create(
        ctx: typer.Context, name: str,
        description: Annotated[str, typer.Option(help="free text")] = "",
        config: ConfigOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    ) -> None:
        """Create an empty group."""
        on(ctx, config, server, token, lambda inv: inv.create_group(name, description))
        console.print(plain(f"group {name} created"))

    @groups_app.command()
    def rename(ctx: typer.Context, name: str, new_name: str, config: ConfigOpt = None, server: ServerOpt = None,
               token: TokenOpt = None) -> None:
        """Rename a group; its hosts stay in it."""
        on(ctx, config, server, token, lambda inv: inv.rename_group(name, new_name))
        console.print(plain(f"group {name} renamed to {new_name}"))

    @groups_app.command()
    def delete(ctx: typer.Context, name: str, config: ConfigOpt = None, server: ServerOpt = None,
               token: TokenOpt = None) -> None:
        """Delete a group; its hosts stay in the inventory."""
        on(ctx, config, server, token, lambda inv: inv.delete_group(name))
        console.print(plain(f"group {name} deleted"))

    @groups_app.command("add")
    def add_members(
        ctx: typer.Context, group: str, hosts: Annotated[list[str], typer.Argument(help="host names")],
        config: ConfigOpt = None, output: OutputOpt = OutputFormat.text, server: ServerOpt = None,
        token: TokenOpt = None,
    ) -> None:
        """Put hosts into a group."""
        members = on(ctx, config, server, token, lambda inv: inv.set_members(group, add=hosts))
        _members(group, members, output)

    @groups_app.command("remove")
    def remove_members(
        ctx: typer.Context, group: str, hosts: Annotated[list[str], typer.Argument(help="host names")],
        config: ConfigOpt = None, output: OutputOpt = OutputFormat.text, server: ServerOpt = None,
        token: TokenOpt = None,
    ) -> None:
        """Take hosts out of a group (they stay in the inventory)."""
        members = on(ctx, config, server, token, lambda inv: inv.set_members(group, remove=hosts))
        _members(group, members, output)


def _members(group: str, members: list[str], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json({"group": group, "members": members, "total": len(members)})
    else:
        console.print(plain(f"group {group}: {len(members)} host(s)" + (": " + ", ".join(members) if members else "")),
                      soft_wrap=True)
