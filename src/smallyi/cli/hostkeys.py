"""``small-yi hostkeys``: the host keys pinned on first use, and forgetting one after a reinstall."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from smallyi.cli.common import (
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    console,
    err_console,
    fail,
    in_runtime,
    plain,
    print_json,
    settings,
    when,
    whoami,
)
from smallyi.cli.helptext import typer_app
from smallyi.cli.target import GroupOpt, HostsOpt, LabelOpt, selector

if TYPE_CHECKING:
    from smallyi.execution.connectors.keyscan import ScannedKey
    from smallyi.runtime import Runtime

hostkeys_app = typer_app(help="Host keys small-yi trusts beside known_hosts: scan, list, forget.",
                           no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(hostkeys_app, name="hostkeys")


@hostkeys_app.command(name="list")
def list_cmd(config: ConfigOpt = None, output: OutputOpt = OutputFormat.text) -> None:
    """Pinned host keys with their fingerprints."""
    items = list(in_runtime(settings(config), lambda rt: rt.host_keys.list()))
    if output is OutputFormat.json:
        print_json({"items": items, "total": len(items)})
        return
    for i in items:
        console.print(plain(f"{i['host']}  {i['key_type']}  {i['fingerprint']}  pinned {when(i['pinned_at'])}"))
    console.print(f"{len(items)} pinned key(s)")


@hostkeys_app.command()
def forget(host: str, config: ConfigOpt = None) -> None:
    """Forget HOST's pinned key (``address`` or ``[address]:port``); its next key is trusted anew. Audited."""
    async def go(rt: Runtime) -> int:
        n = await rt.host_keys.forget(host)
        await rt.audit.record("hostkey.forget", actor=whoami(), target=host, perm="hostkeys.write")
        return n

    console.print(plain(f"forgot {in_runtime(settings(config), go)} pinned key(s) of {host}"))


@hostkeys_app.command()
def scan(group: GroupOpt = None, hosts: HostsOpt = None, label: LabelOpt = None,
         yes: Annotated[bool, typer.Option("--yes", "-y", help="trust every unknown key without asking")] = False,
         config: ConfigOpt = None, output: OutputOpt = OutputFormat.text) -> None:
    """Fetch the target hosts' host keys and trust the unknown ones (trust on first use, confirmed).

    Each key is shown with its SHA256 fingerprint, compare them with the hosts' own
    (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host). Unknown keys are pinned once you
    confirm (or with --yes) and are trusted from then on under host_key_policy strict and accept-new alike;
    a key that differs from the trusted one is never replaced here (`hostkeys forget` it first). Exit
    status 1 when a host's key changed or a host could not be scanned. Audited.
    """
    import sys

    from smallyi.execution.connectors.keyscan import scan as scan_keys

    s = settings(config)
    sel = selector(group, hosts, label)
    actor = whoami()

    async def go(rt: Runtime) -> tuple[list[ScannedKey], list[ScannedKey]]:
        targets = [h for h in await rt.inventory.resolve(sel) if h.connector == "ssh"]
        found = await scan_keys(targets, s.ssh, rt.host_keys)
        unknown = [k for k in found if k.status == "unknown"]
        if output is OutputFormat.text:
            _print_scan(found)
        if unknown and not yes:
            if not sys.stdin.isatty():
                fail(f"{len(unknown)} unknown host key(s) not trusted: confirm in a terminal or pass --yes")
            if not typer.confirm(f"Trust these {len(unknown)} unknown host key(s)?", default=False):
                return found, []
        trusted = []
        for k in unknown:
            if await rt.host_keys.trust(k.pin_host, k.line, k.fingerprint, actor=actor):
                trusted.append(k)
        return found, trusted

    found, trusted = in_runtime(s, go)
    bad = [k for k in found if k.status in ("changed", "error")]
    if output is OutputFormat.json:
        print_json({"items": [_scan_item(k, k in trusted) for k in found], "total": len(found),
                    "trusted": len(trusted), "changed": sum(k.status == "changed" for k in found),
                    "errors": sum(k.status == "error" for k in found)})
    else:
        counts = {st: sum(k.status == st for k in found) for st in ("known", "unknown", "changed", "error")}
        console.print(f"{len(found)} host(s): {counts['known']} known, {counts['unknown']} unknown "
                      f"({len(trusted)} trusted now), {counts['changed']} changed, {counts['error']} not scanned",
                      markup=False)
        for k in found:
            if k.status == "changed":
                err_console.print(f"{k.host}: host key CHANGED ({k.fingerprint}); not trusted. If the host was "
                                  f"reinstalled: small-yi hostkeys forget '{k.pin_host}' (or fix known_hosts), "
                                  "then scan again", markup=False)
    if bad:
        raise typer.Exit(1)


def _print_scan(found: list[ScannedKey]) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("host", "address", "status", "key", "fingerprint"):
        table.add_column(col)
    for k in found:
        table.add_row(plain(k.host), plain(f"{k.address}:{k.port}"), k.status, plain(k.key_type),
                      plain(k.fingerprint or k.problem))
    console.print(table)


def _scan_item(k: ScannedKey, trusted: bool) -> dict[str, Any]:
    return {"host": k.host, "address": k.address, "port": k.port, "status": k.status, "key_type": k.key_type,
            "fingerprint": k.fingerprint, "problem": k.problem or None, "trusted_now": trusted}
