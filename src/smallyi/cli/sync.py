"""``small-yi sync``: GitOps from the command line — plan, apply, rollback, status, history, show, drift.

In-process on the configured database and repository (no server needed), as ``run`` is. Each file's
outcome is printed as it happens (``[host] changed /etc/nginx/nginx.conf``); ``--output json`` prints
one document instead. Exit status: 0 when every host took the commit (drift: no drift), 1 otherwise,
2 for bad input (a template error included: nothing was written).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from smallyi.cli.common import (
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    console,
    esc,
    in_runtime,
    page_note,
    plain,
    print_json,
    settings,
    when,
    whoami,
)
from smallyi.cli.helptext import typer_app
from smallyi.gitops.reports import FileStatus, HostResult, SyncRecord, SyncStatus, SyncSummary

if TYPE_CHECKING:
    from smallyi.gitops.service import GitOpsService

T = TypeVar("T")

STYLE = {FileStatus.CHANGED: "green", FileStatus.UNCHANGED: "dim", FileStatus.FAILED: "bold red",
         FileStatus.RESTORED: "yellow", FileStatus.DRIFTED: "bold yellow", FileStatus.MISSING: "bold yellow"}


def _with_gitops(config: str | None, fn: Callable[[GitOpsService], Awaitable[T]]) -> T:
    """``fn`` on the configured GitOps service, in a CLI runtime closed after."""
    return in_runtime(settings(config), lambda rt: fn(rt.gitops))


class _Progress:
    """Prints each file's outcome as it comes (unchanged files only as a count), phases dimmed."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.unchanged = 0

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        kind = event.get("type")
        if kind == "phase":
            console.print(f"[dim]{esc(event['phase'])}: {event.get('files', 0)} file(s)[/]", markup=True)
        elif kind == "file":
            status = event["status"]
            if status == FileStatus.UNCHANGED:
                self.unchanged += 1
                return
            reason = f"  {esc(event['reason'])}" if event.get("reason") else ""
            console.print(f"{esc('[' + event['host'] + ']')} [{STYLE.get(status, 'default')}]{esc(status)}[/] "
                          f"{esc(event['path'])}{reason}", markup=True, highlight=False, soft_wrap=True)
        elif kind == "sops":
            _sops(event)
        elif kind == "start":
            c = event["commit"]
            console.print(plain(f"commit {c['short']} {c['subject']} ({c['author']})"), highlight=False)


def _diffs(hosts: list[HostResult]) -> None:
    for h in hosts:
        for f in h["files"]:
            if f.get("diff"):
                console.print(f"[bold]{esc('[' + h['host'] + '] ' + f['path'])}[/]", markup=True)
                diff = f["diff"]
                for line in diff.split("\n")[:-1] if diff.endswith("\n") else diff.split("\n"):
                    style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
                    console.print(plain(line), style=style or None, highlight=False)


def _sops(report: Mapping[str, Any], *, would: bool = False) -> None:
    """``sops: 1 created, 2 unchanged`` and each problem as ``sops/x.yaml:5: step a: cmd: ...``."""
    parts = ", ".join(f"{len(report[k])} {k}" + (f" ({', '.join(report[k])})" if k != "unchanged" else "")
                      for k in ("created", "updated", "removed", "unchanged") if report.get(k))
    console.print(plain(f"sops{' (would be)' if would else ''}: {parts or 'none'}"), highlight=False,
                  soft_wrap=True)
    for p in report.get("problems", []):
        style = "yellow" if p["severity"] == "warning" else "red"
        console.print(f"  [{style}]{esc(p['text'])}[/]", markup=True, highlight=False, soft_wrap=True)


def _summary(record: SyncSummary, verb: str) -> None:
    files = record["counts"].get("files", {})
    hosts = record["counts"].get("hosts", {})
    parts = ", ".join(f"{n} {s}" for s, n in sorted(files.items())) or "no files"
    host_parts = ", ".join(f"{n} {s}" for s, n in sorted(hosts.items())) or "no hosts"
    console.print(plain(f"{verb} {record['id']} of {record['short']} {record['status']}: files {parts}; "
                        f"hosts {host_parts}"), highlight=False)
    if record.get("reason"):
        console.print(plain(f"  {record['reason']}"), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    sync = typer_app(name="sync", help="GitOps: config files from Git, rendered per host and pushed out.",
                       no_args_is_help=True)
    app.add_typer(sync)

    @sync.command("plan")
    def plan_cmd(
        commit: Annotated[str | None, typer.Option("--commit", help="commit id, branch or tag (default: branch head)")] = None,
        output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None,
    ) -> None:
        """Show what a sync would change on each host, with diffs; writes nothing."""
        as_json = output is OutputFormat.json
        result = _with_gitops(config, lambda g: g.plan(commit, listener=None if as_json else _Progress(False)))
        if as_json:
            print_json(result)
            return
        _diffs(result["hosts"])
        if result.get("sops") is not None:
            _sops(result["sops"], would=True)
        files = result["counts"].get("files", {})
        c = result["commit"]
        console.print(plain(f"plan of {c['short']} {c['subject']}: {files.get('changed', 0)} file(s) would change, "
                            f"{files.get('unchanged', 0)} unchanged, {files.get('failed', 0)} unreadable "
                            f"on {result['counts'].get('host_count', 0)} host(s)"), highlight=False)

    @sync.command("apply")
    def apply_cmd(
        commit: Annotated[str | None, typer.Option("--commit", help="commit id, branch or tag (default: branch head)")] = None,
        diff: Annotated[bool, typer.Option("--diff", help="print each changed file's diff")] = False,
        output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None,
    ) -> None:
        """Sync a commit to its hosts now: render all, write what changed, check, reload."""
        as_json = output is OutputFormat.json
        record = _with_gitops(config, lambda g: g.sync(
            commit, trigger="cli", user=whoami(), listener=_Progress(as_json)))
        _finish(record, as_json, diff, "sync")

    @sync.command("rollback")
    def rollback_cmd(
        to: Annotated[str, typer.Option("--to", help="the earlier commit to go back to")],
        diff: Annotated[bool, typer.Option("--diff", help="print each changed file's diff")] = False,
        output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None,
    ) -> None:
        """Re-render an earlier commit of the branch and distribute it like a sync."""
        as_json = output is OutputFormat.json
        record = _with_gitops(config, lambda g: g.rollback(
            to, trigger="cli", user=whoami(), listener=_Progress(as_json)))
        _finish(record, as_json, diff, "rollback")

    @sync.command("drift")
    def drift_cmd(output: OutputOpt = OutputFormat.text, config: ConfigOpt = None) -> None:
        """Check that every synced file still holds what the last sync left there."""
        as_json = output is OutputFormat.json
        record = _with_gitops(config, lambda g: g.drift(
            trigger="cli", user=whoami(), listener=_Progress(as_json)))
        if as_json:
            print_json(record)
        else:
            _summary(record, "drift check")
        raise typer.Exit(0 if record["status"] == SyncStatus.SUCCESS else 1)

    @sync.command("status")
    def status_cmd(output: OutputOpt = OutputFormat.text, config: ConfigOpt = None) -> None:
        """The repository, branch, last sync and last drift check."""
        st = _with_gitops(config, lambda g: g.status())
        if output is OutputFormat.json:
            print_json(st)
            return
        if not st["enabled"]:
            console.print("GitOps is off: set gitops.repo in the config (docs/gitops.md)")
            return
        console.print(plain(f"repository {st['repo']} branch {st['branch']}; {st['managed_files']} file(s) on "
                            f"{st['managed_hosts']} host(s) managed"), highlight=False)
        for rec, verb in ((st["last_sync"], "last sync"), (st["last_drift"], "last drift check")):
            if rec:
                console.print(plain(f"{verb}: {rec['id']} {rec['kind']} of {rec['short']} {rec['status']} at "
                                    f"{when(rec['finished_at'])} ({rec['trigger']}, {rec['requested_by']})"), highlight=False)
            else:
                console.print(f"{verb}: none yet")

    @sync.command("history")
    def history_cmd(
        kind: Annotated[str | None, typer.Option(help="sync, rollback or drift")] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
        offset: Annotated[int, typer.Option(min=0, help="skip this many records (the next page)")] = 0,
        output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None,
    ) -> None:
        """Sync records, newest first: one page (--limit, --offset), and how many there are."""
        items, total = _with_gitops(config, lambda g: g.history(kind=kind, limit=limit, offset=offset))
        if output is OutputFormat.json:
            print_json({"items": items, "total": total})
            return
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("ID", "KIND", "COMMIT", "STATUS", "FILES", "TRIGGER", "BY", "STARTED", "MESSAGE"):
            table.add_column(col, overflow="fold")
        for r in items:
            files = ", ".join(f"{n} {s}" for s, n in sorted(r["counts"].get("files", {}).items()))
            table.add_row(str(r["id"]), plain(r["kind"]), plain(r["short"]), plain(r["status"]), plain(files or "-"),
                          plain(r["trigger"]), plain(r["requested_by"]), when(r["started_at"]),
                          plain((r["message"] or "").split("\n")[0][:60]))
        console.print(table)
        console.print(page_note(len(items), total, offset, "records"))

    @sync.command("show")
    def show_cmd(
        sync_id: Annotated[int, typer.Argument(help="the record's id (from `sync history`)")],
        output: OutputOpt = OutputFormat.text,
        config: ConfigOpt = None,
    ) -> None:
        """One sync record: every host's files, their outcome and diff."""
        record = _with_gitops(config, lambda g: g.get(sync_id))
        if output is OutputFormat.json:
            print_json(record)
            return
        for h in record["hosts"]:
            for f in h["files"]:
                reason = f"  {f['reason']}" if f["reason"] else ""
                console.print(plain(f"[{h['host']}] {f['status']} {f['path']}{reason}"), highlight=False,
                              soft_wrap=True)
        _diffs(record["hosts"])
        _summary(record, record["kind"])


def _finish(record: SyncRecord, as_json: bool, diff: bool, verb: str) -> None:
    if as_json:
        print_json(record)
    else:
        if diff:
            _diffs(record["hosts"])
        _summary(record, verb)
    raise typer.Exit(0 if record["status"] == SyncStatus.SUCCESS else 1)
