"""``small-yi secrets``: list stored secrets (never their values), store one, rotate the master key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smallyi.cli.common import (
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    console,
    fail,
    in_runtime,
    plain,
    print_json,
    settings,
    when,
    whoami,
)
from smallyi.cli.helptext import typer_app

if TYPE_CHECKING:
    from smallyi.runtime import Runtime

secrets_app = typer_app(help="Encrypted secrets: list, set, rotate the master key.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")


@secrets_app.command(name="list")
def list_cmd(config: ConfigOpt = None, output: OutputOpt = OutputFormat.text) -> None:
    """Stored secrets: name, kind, key and last change; never the values."""
    items = [i.to_dict() for i in in_runtime(settings(config), lambda rt: rt.secrets.list(), references=False)]
    if output is OutputFormat.json:
        print_json({"items": items, "total": len(items)})
        return
    for i in items:
        console.print(plain(f"{i['name']}  {i['kind']}  key {i['key_id']}  updated {when(i['updated_at'])} "
                            f"by {i['updated_by'] or '-'}"))
    console.print(f"{len(items)} secret(s)")


@secrets_app.command(name="set")
def set_cmd(
    name: str,
    kind: Annotated[str, typer.Option(help="ssh-key, password, webhook, token or other")] = "other",
    file: Annotated[Path | None, typer.Option(help="read the value from this file (else standard input)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Store a secret (from --file or standard input), encrypted under the master key."""
    s = settings(config)
    value = file.read_text() if file else sys.stdin.read().rstrip("\n")

    async def go(rt: Runtime) -> None:
        await rt.secrets.put(name, value, kind=kind, by=whoami())
        await rt.audit.record("secrets.put", actor=whoami(), target=name, perm="secrets.write", detail={"kind": kind})

    in_runtime(s, go, references=False)
    console.print(plain(f"stored secret {name} (encrypted)"))


@secrets_app.command()
def rotate(
    new_key_stdin: Annotated[bool, typer.Option(
        "--new-key-stdin", help="read the new key (base64 of 32 bytes) from standard input; needed when the "
        "key comes from the config or the environment")] = False,
    config: ConfigOpt = None,
) -> None:
    """Make a new master key and re-encrypt everything stored under it (secrets, notification channels)
    in one transaction; audited.

    With the key file, the file is updated in place (both keys are kept until the database is done,
    so a crash loses nothing). With a key from the config or environment, give the new key on
    standard input and put it in their place afterwards.
    """
    from smallyi.secrets import keyring
    from smallyi.secrets.box import Box
    from smallyi.secrets.store import reencrypt_all

    s = settings(config)
    from_file = not s.secrets.master_key
    if not from_file and not new_key_stdin:
        fail("the master key comes from the config or the environment: pass --new-key-stdin with the new key "
             "(head -c32 /dev/urandom | base64), then put it in their place")
    new = keyring.decode_key(sys.stdin.read(), where="standard input") if new_key_stdin else keyring.new_key()

    async def go(rt: Runtime) -> tuple[dict[str, int], str, str]:
        old = rt.secrets.box
        keys = {**old.keys, keyring.key_id(new): new}
        path = Path(s.secrets.key_file)
        if from_file:
            keyring.write_key_file(path, [new, *old.keys.values()])
        counts = await reencrypt_all(rt.db, rt.sealed_stores(), Box(keys, keyring.key_id(new)))
        if from_file:
            keyring.write_key_file(path, [new])
        await rt.audit.record("secrets.rotate", actor=whoami(), perm="secrets.write", detail={
            "from": old.current, "to": keyring.key_id(new), "secrets": counts.get("secret", 0),
            "reencrypted": counts})
        return counts, old.current, keyring.key_id(new)

    counts, old_id, new_id = in_runtime(s, go, references=False)
    done = ", ".join(f"{n} {kind}(s)" for kind, n in counts.items())
    console.print(f"re-encrypted {done}: master key {old_id} -> {new_id}")
    if not from_file:
        console.print("now set secrets.master_key (or its environment variable) to the new key, then restart")
