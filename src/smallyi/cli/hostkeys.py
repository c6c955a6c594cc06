"""``small-yi hostkeys``: the host keys pinned on first use, and forgetting one after a reinstall."""

from __future__ import annotations

from typing import Any

import typer

from smallyi.cli.common import ConfigOpt, OutputFormat, OutputOpt, console, plain, print_json, run, settings

hostkeys_app = typer.Typer(help="Host keys pinned on first use (accept-new): list, forget.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(hostkeys_app, name="hostkeys")


@hostkeys_app.command(name="list")
def list_cmd(config: ConfigOpt = None, output: OutputOpt = OutputFormat.text) -> None:
    """Pinned host keys with their fingerprints."""
    from smallyi.runtime import Runtime

    s = settings(config)

    async def go() -> list[dict[str, Any]]:
        rt = await Runtime.open(s, kind="cli")
        try:
            return list(await rt.host_keys.list())
        finally:
            await rt.close()

    items = run(go)
    if output is OutputFormat.json:
        print_json({"items": items, "total": len(items)})
        return
    for i in items:
        console.print(plain(f"{i['host']}  {i['key_type']}  {i['fingerprint']}  pinned {i['pinned_at']:%Y-%m-%d}"))
    console.print(f"{len(items)} pinned key(s)")


@hostkeys_app.command()
def forget(host: str, config: ConfigOpt = None) -> None:
    """Forget HOST's pinned key (``address`` or ``[address]:port``); its next key is trusted anew. Audited."""
    import getpass

    from smallyi.runtime import Runtime

    s = settings(config)

    async def go() -> int:
        rt = await Runtime.open(s, kind="cli")
        try:
            n = await rt.host_keys.forget(host)
            await rt.audit.record("hostkey.forget", actor=f"cli:{getpass.getuser()}", target=host,
                                  perm="hostkeys.write")
            return n
        finally:
            await rt.close()

    console.print(plain(f"forgot {run(go)} pinned key(s) of {host}"))
