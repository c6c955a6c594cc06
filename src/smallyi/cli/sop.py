"""``small-yi sop``: validate, plan and run SOP files; store them; follow and decide runs.

``validate`` and ``plan`` only read the file (and the config, when there is one, for ticket
templates and environments). ``run`` runs in-process on the configured database, like ``run``:
the server sees the run, and its approvals can be decided from the console, the API or
``small-yi sop approve``. Exit status: 0 success / valid, 1 failed run / invalid file, 2 bad input,
130 interrupted (the run is cancelled). Registering this module also registers ``small-yi schedules``.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from smallyi.cli import common, schedules
from smallyi.cli.common import (
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    esc,
    fail,
    page_note,
    plain,
    print_json,
    run,
    settings,
    when,
    whoami,
)
from smallyi.cli.helptext import typer_app
from smallyi.cli.target import GroupOpt, HostsOpt, LabelOpt
from smallyi.cli.termsafe import safe
from smallyi.sop.statuses import SopRunStatus, SopStepStatus

if TYPE_CHECKING:
    from smallyi.config import Settings
    from smallyi.sop.automation import Automation
    from smallyi.sop.problems import Problem

out, err = common.console, common.err_console
sop_app = typer_app(help="Declarative procedures (SOPs): validate, plan, run, store, approve.", no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="the SOP's YAML file", show_default=False)]
#: a stored SOP's name (``sop run NAME``): what the store accepts
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
StrictOpt = Annotated[bool, typer.Option("--strict-mode", help="unknown fields and undefined variables are errors")]
EnvOpt = Annotated[str, typer.Option("--inject-env", help="inject this environment's variables (environments:)")]
VarOpt = Annotated[list[str] | None, typer.Option("--var", help="NAME=VALUE overriding vars:; repeat for more")]
_MARK = {SopStepStatus.SUCCESS: "[green]✓[/]", SopStepStatus.FAILED: "[red]✗[/]", SopStepStatus.TIMEOUT: "[red]✗[/]",
         SopStepStatus.SKIPPED: "[dim]-[/]", SopStepStatus.CANCELLED: "[yellow]■[/]",
         SopStepStatus.INTERRUPTED: "[yellow]■[/]"}


def register(app: typer.Typer) -> None:
    app.add_typer(sop_app, name="sop")
    schedules.register(app)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot be read: {exc}")


def _optional_settings(config: str | None) -> Settings | None:
    """The config when one is there (``--config`` must exist); validation works without one."""
    from smallyi.config import config_path

    path = config_path(config)
    if config is None and not path.exists():
        return None
    return settings(config)


def _problem_line(p: Problem, source: str) -> str:
    color = "yellow" if p.warning else "red"
    return f"[{color}]{esc(p.describe(source))}[/]"


def _vars(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            fail(f"--var {item!r}: write NAME=VALUE")
        out[name.strip()] = value
    return out


def _target(group: str | None, hosts: str | None, labels: list[str] | None) -> dict[str, Any] | None:
    from smallyi.cli.target import selector
    from smallyi.errors import SmallYiError

    if not (group or hosts or labels):
        return None
    try:
        return selector(group, hosts, labels).to_dict()
    except SmallYiError as exc:
        fail(exc.message)


@sop_app.command("validate")
def validate_cmd(file: FileArg, strict: StrictOpt = False, output: OutputOpt = OutputFormat.text,
                 config: ConfigOpt = None) -> None:
    """Check a SOP file: every error with its line, step and field (exit 1 if any)."""
    from smallyi.sop.dag import plan
    from smallyi.sop.validate import Knowns, parse_sop

    text = _read(file)
    s = _optional_settings(config)
    knowns = Knowns(ticket_templates=frozenset(s.tickets.templates), environments=s.sop.environments) if s else None
    sop, problems = parse_sop(text, source=str(file), strict=strict, knowns=knowns)
    errors = [p for p in problems if not p.warning]
    if output is OutputFormat.json:
        print_json({"file": str(file), "valid": not errors and sop is not None,
                    "problems": [p.to_dict() for p in problems],
                    "plan": plan(sop).to_dict() if sop is not None and not errors else None})
    else:
        for p in problems:
            out.print(_problem_line(p, str(file)), soft_wrap=True, markup=True)
        if errors or sop is None:
            out.print(f"{esc(file)}: [red]{len(errors) or 1} error(s)[/], {len(problems) - len(errors)} warning(s)",
                          soft_wrap=True, markup=True)
        else:
            waves = len(plan(sop).waves)
            out.print(f"{esc(file)}: [green]valid[/] ({len(sop.steps)} steps in {waves} wave(s)"
                          + (f", {len(problems)} warning(s))" if problems else ")"), soft_wrap=True, markup=True)
    raise typer.Exit(1 if errors or sop is None else 0)


@sop_app.command("plan")
def plan_cmd(file: FileArg, output: OutputOpt = OutputFormat.text, config: ConfigOpt = None) -> None:
    """Print the DAG: the waves of steps that run in parallel, and what each step does."""
    from smallyi.sop.dag import plan
    from smallyi.sop.preview import describe
    from smallyi.sop.problems import SopInvalid
    from smallyi.sop.validate import load_sop

    try:
        sop, _ = load_sop(_read(file), source=str(file))
    except SopInvalid as exc:
        fail(exc.message, 1)
    p = plan(sop)
    steps: list[dict[str, Any]] = [
        {"id": s.id, "type": s.type, "needs": list(s.needs), "does": describe(s), "timeout": s.timeout,
         "retries": s.retries, "on_failure": s.on_failure.mode, "when": s.when} for s in sop.steps]
    if output is OutputFormat.json:
        print_json({**p.to_dict(), "steps": steps, "handlers": sorted(sop.handlers)})
        return
    by_id = {s["id"]: s for s in steps}
    for n, wave in enumerate(p.waves, 1):
        out.print(f"[bold]wave {n}[/]" + (" (in parallel)" if len(wave) > 1 else ""), markup=True)
        for sid in wave:
            s = by_id[sid]
            needs = f"  [dim]after {esc(', '.join(s['needs']))}[/]" if s["needs"] else ""
            out.print(f"  {esc(sid)} [cyan]{esc(s['type'])}[/] {esc(s['does'])}{needs}", soft_wrap=True, markup=True)
    for h in sorted(sop.handlers):
        out.print(f"[bold]on failure[/]  {esc(h)} [cyan]{esc(by_id[h]['type'])}[/] {esc(by_id[h]['does'])}",
                  markup=True)


@sop_app.command("run")
def run_cmd(
    file: Annotated[str | None, typer.Argument(
        help="the SOP's YAML file, or the name of a stored SOP", metavar="NAME|FILE", show_default=False)] = None,
    stored: Annotated[str | None, typer.Option("--sop", help="run the SOP stored under this name")] = None,
    inject_env: EnvOpt = "", var: VarOpt = None, group: GroupOpt = None, hosts: HostsOpt = None,
    label: LabelOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would run where; run nothing")] = False,
    strict: StrictOpt = False, output: OutputOpt = OutputFormat.text, config: ConfigOpt = None,
    server: common.ServerOpt = None, token: common.TokenOpt = None,
) -> None:
    """Run a SOP: live output per step and host, a summary, exit 0 only if the run succeeded.

    With --server (or SMALLYI_SERVER) the run starts on that server and is followed from there.
    """
    if (file is None) == (stored is None):
        fail("give a SOP file or a stored SOP's name (or --sop NAME)")
    path = Path(file) if file is not None else None
    if file is not None and path is not None and not path.exists() and _NAME.match(file) \
            and not file.endswith((".yaml", ".yml")):
        stored, path = file, None  # no such file, and it reads as a name: the stored SOP
    text = _read(path) if path is not None else ""
    variables, target = _vars(var), _target(group, hosts, label)
    if server:
        ok = run(lambda: _remote(server, token, path, text, stored, inject_env, variables, target, dry_run,
                                 output is OutputFormat.json))
        raise typer.Exit(0 if ok else 1)
    s = settings(config)
    ok = run(lambda: _run(s, path, text, stored, inject_env, variables, target, dry_run,
                          strict, output is OutputFormat.json))
    raise typer.Exit(0 if ok else 1)


async def _remote(server: str, token: str | None, path: Path | None, text: str, stored: str | None, env: str,
                  variables: dict[str, str], target: dict[str, Any] | None, dry_run: bool, as_json: bool) -> bool:
    from smallyi.cli.sop_remote import remote_sop_run

    body: dict[str, Any] = {"vars": variables, "environment": env, "target": target, "dry_run": dry_run}

    def summary(run_doc: dict[str, Any], steps: list[dict[str, Any]]) -> None:
        if as_json:
            print_json({"run": run_doc, "steps": steps})
        else:
            _print_summary(run_doc, steps)

    status, interrupted = await remote_sop_run(
        server, token, name=stored, source=text if path is not None else None,
        body={k: v for k, v in body.items() if v not in (None, "", {})} | {"dry_run": dry_run},
        as_json=as_json, on_event=_print_event, on_preview=lambda p: _print_preview(p, as_json), on_summary=summary)
    if interrupted:
        raise typer.Exit(130)
    return status == SopRunStatus.SUCCESS


async def _run(s: Settings, file: Path | None, text: str, stored: str | None, env: str, variables: dict[str, str],
               target: dict[str, Any] | None, dry_run: bool, strict: bool, as_json: bool) -> bool:
    from smallyi.runtime import Runtime
    from smallyi.sop import automation
    from smallyi.sop.problems import SopInvalid
    from smallyi.sop.validate import load_sop

    rt = await Runtime.open(s, kind="cli")
    auto = automation.build(rt)
    try:
        version, source_name = 0, str(file or stored)
        if stored:
            row = await auto.sop.store.get(stored)
            text, version = row.source, row.version
        try:
            sop, warnings = load_sop(text, source=source_name, strict=strict, knowns=await auto.sop.knowns())
        except SopInvalid as exc:
            for p in exc.problems:
                err.print(_problem_line(p, source_name), soft_wrap=True, markup=True)
            raise typer.Exit(1) from None
        for w in warnings:
            err.print(_problem_line(w, source_name), soft_wrap=True, markup=True)
        if dry_run:
            preview = await auto.sop.preview(sop, environment=env, variables=variables, target=target)
            _print_preview(preview, as_json)
            return True
        return await _follow(auto, sop, text, version, env, variables, target, as_json, name=stored or "")
    finally:
        await auto.close()
        await rt.close()


async def _follow(auto: Automation, sop: Any, text: str, version: int, env: str, variables: dict[str, str],
                  target: dict[str, Any] | None, as_json: bool, name: str = "") -> bool:
    from smallyi.sop.records import run_dict, step_dict, topic
    from smallyi.sop.service import Starter

    def lines(step: str, w: Mapping[str, Any]) -> None:
        if not as_json and w.get("stream") in ("stdout", "stderr"):
            mark = "!" if w["stream"] == "stderr" else ""
            sys.stdout.write(f"[{safe(step)}][{safe(w['host'])}]{mark} {safe(w['text'])}\n")
            sys.stdout.flush()

    svc = auto.sop
    run_id = await svc.start(sop, text, starter=Starter(whoami(), trigger="cli"), environment=env,
                             variables=variables, target=target, listener=lines, version=version, name=name)
    sub = svc.records.bus.subscribe(topic(run_id))
    loop = asyncio.get_running_loop()
    interrupted = False
    pending: set[asyncio.Task[str]] = set()

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        pending.add(loop.create_task(svc.cancel(run_id, by=whoami())))

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        if not as_json:
            err.print(f"SOP run {run_id} started")
            async for event in sub:
                _print_event(run_id, event)
        status, _ = await svc.wait(run_id)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        sub.close()
    run_row = await svc.records.run(run_id)
    steps = await svc.records.steps(run_id)
    if as_json:
        print_json({"run": run_dict(run_row), "steps": [step_dict(x) for x in steps]})
    else:
        _print_summary(run_dict(run_row), [step_dict(x) for x in steps])
    if interrupted:
        raise typer.Exit(130)
    return status is SopRunStatus.SUCCESS


def _print_event(run_id: int, e: dict[str, Any]) -> None:
    kind, step, data = e["kind"], e.get("step"), e.get("data") or {}
    if kind == "step.start":
        err.print(f"▶ {esc(step)} [dim]({esc(data.get('type'))})[/]", markup=True)
    elif kind == "step.finish":
        status = data.get("status", "")
        reason = esc(f": {data['reason']}") if data.get("reason") else ""
        err.print(f"{_MARK.get(status, '?')} {esc(step)} {esc(status)} in {data.get('duration', 0):g}s{reason}",
                  soft_wrap=True, markup=True)
    elif kind == "step.retry":
        err.print(plain(f"↻ {step} attempt {data.get('attempt')} failed ({data.get('reason')}); retrying"),
                  soft_wrap=True)
    elif kind == "step.waiting" and data.get("policy"):
        err.print(f"⏸ {esc(step)} is held by the command policy: {esc(str(data.get('message')))}\n"
                  f"  another user approves it in the console (Approvals) or with "
                  f"POST /api/v1/approvals/{esc(data.get('approval_id'))}/approve", soft_wrap=True, markup=True)
    elif kind == "step.resumed":
        err.print(f"▶ {esc(step)} approved by {esc(str(data.get('approved_by')))}: it runs", markup=True)
    elif kind == "step.waiting":
        err.print(f"⏸ {esc(step)} waits for approval {esc(data.get('approval_id'))}: {esc(str(data.get('message')))}\n"
                  f"  approve: small-yi sop approve {run_id} {esc(step)}  (or in the console / API)",
                  soft_wrap=True, markup=True)
    elif kind == "step.ticket":
        err.print(plain(f"🎫 {step} opened ticket {data.get('ticket_id')} {data.get('url') or ''}"))
    elif kind == "step.warning":
        err.print(f"[yellow]! {esc(step)}: {esc(str(data.get('message')))}[/]", soft_wrap=True, markup=True)


def _print_summary(run_doc: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> None:
    """The steps as a table, then the run's status (``run_dict`` / ``step_dict`` shapes, local or from the API)."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("STEP", "TYPE", "STATUS", "TIME", "TASKS", "REASON"):
        table.add_column(col, overflow="fold")
    for x in steps:
        table.add_row(plain(x["id"]), plain(x["type"]), plain(x["status"]),
                      f"{x['duration']:.2f}s" if x["duration"] is not None else "",
                      ",".join(map(str, x["task_ids"])), plain(x["reason"] or ""))
    out.print(table)
    color = "green" if run_doc["status"] == SopRunStatus.SUCCESS else "red"
    out.print(f"SOP run {run_doc['id']} [{color}]{esc(run_doc['status'])}[/]" +
              esc(f": {run_doc['reason']}" if run_doc["reason"] else ""), soft_wrap=True, markup=True)


def _print_preview(preview: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(preview)
        return
    out.print("[bold]dry run[/]: nothing runs" + (f"; environment {esc(preview['environment'])}"
                                                     if preview.get("environment") else ""), markup=True)
    for item in [*preview["steps"], *preview["handlers"]]:
        wave = f"wave {item['wave']}" if item["wave"] else "on failure"
        out.print(f"[bold]{wave}[/] {esc(item['id'])} [cyan]{esc(item['type'])}[/] {esc(item['does'])}",
                  soft_wrap=True, markup=True)
        if "hosts" in item:
            out.print(plain(f"    on: {', '.join(item['hosts']) or '-'}"), soft_wrap=True)
        if item.get("command"):
            first, *more = str(item["command"]).split("\n")  # a pinning line, then the command
            out.print(plain(f"    command: {first}"), soft_wrap=True)
            for line in more:
                out.print(plain(f"      {line}"), soft_wrap=True)
        if item.get("note"):
            out.print(f"    [dim]{esc(item['note'])}[/]", soft_wrap=True, markup=True)


@sop_app.command("save")
def save_cmd(name: Annotated[str, typer.Argument(help="the name to store it under")], file: FileArg,
             strict: StrictOpt = False, config: ConfigOpt = None) -> None:
    """Store a SOP file in the platform (a new version if the name exists)."""
    async def go(auto: Automation) -> None:
        row, warnings = await auto.sop.store.save(name, _read(file), by=whoami(), knowns=await auto.sop.knowns(),
                                                  strict=strict)
        for w in warnings:
            err.print(_problem_line(w, name), markup=True)
        out.print(plain(f"stored SOP {row.name} version {row.version}"))

    _with_automation(config, go)


@sop_app.command("list")
def list_cmd(output: OutputOpt = OutputFormat.text, config: ConfigOpt = None) -> None:
    """SOPs stored in the platform."""
    from smallyi.sop.store import sop_dict

    async def go(auto: Automation) -> None:
        rows = [sop_dict(r, source=False) for r in await auto.sop.store.all()]
        if output is OutputFormat.json:
            print_json({"items": rows, "total": len(rows)})
            return
        for r in rows:
            git = r["git"]
            origin = f"  (git {git['path']} @ {git['commit'][:10]}, read-only)" if git else ""
            out.print(plain(f"{r['name']}  v{r['version']}  {r['description']}{origin}"))

    _with_automation(config, go)


@sop_app.command("runs")
def runs_cmd(status: Annotated[str | None, typer.Option(help="only runs with this status")] = None,
             limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
             offset: Annotated[int, typer.Option(min=0, help="skip this many runs (the next page)")] = 0,
             output: OutputOpt = OutputFormat.text, config: ConfigOpt = None) -> None:
    """Recent SOP runs, newest first: one page (--limit, --offset), and how many there are."""
    from smallyi.sop.records import run_dict

    async def go(auto: Automation) -> None:
        rows, total = await auto.sop.records.runs(status=status, limit=limit, offset=offset)
        items = [run_dict(r) for r in rows]
        if output is OutputFormat.json:
            print_json({"items": items, "total": total})
            return
        for r in items:
            out.print(plain(f"{r['id']:>5}  {r['status']:<11} {r['sop'] or '(file)':<20} {r['started_by']:<20} "
                            f"{when(r['created_at'])}  {r['reason'] or ''}"))
        out.print(page_note(len(items), total, offset, "runs"))

    _with_automation(config, go)


@sop_app.command("show")
def show_cmd(run_id: Annotated[int, typer.Argument(help="the run's id")], output: OutputOpt = OutputFormat.text,
             config: ConfigOpt = None) -> None:
    """One run, step by step."""
    from smallyi.sop.records import run_dict, step_dict

    async def go(auto: Automation) -> None:
        row = await auto.sop.records.run(run_id)
        steps = await auto.sop.records.steps(run_id)
        if output is OutputFormat.json:
            print_json({"run": run_dict(row), "steps": [step_dict(x) for x in steps]})
        else:
            _print_summary(run_dict(row), [step_dict(x) for x in steps])

    _with_automation(config, go)


def _decide(approve: bool) -> Any:
    def cmd(run_id: Annotated[int, typer.Argument(help="the run's id")],
            step: Annotated[str, typer.Argument(help="the approval step's id")],
            comment: Annotated[str, typer.Option(help="why")] = "", config: ConfigOpt = None) -> None:
        async def go(auto: Automation) -> None:
            a = await auto.sop.decide(run_id, step, by=whoami(), approve=approve, comment=comment)
            out.print(plain(f"approval {a['id']} ({step} of run {run_id}): {a['status']} by {a['decided_by']}"))

        _with_automation(config, go)

    cmd.__doc__ = "Approve a waiting approval step (as the local user)." if approve else \
        "Reject a waiting approval step (the run fails there)."
    return cmd


sop_app.command("approve")(_decide(True))
sop_app.command("reject")(_decide(False))


@sop_app.command("cancel")
def cancel_cmd(run_id: Annotated[int, typer.Argument(help="the run's id")], config: ConfigOpt = None) -> None:
    """Cancel a run, wherever it runs (remote commands are stopped)."""
    async def go(auto: Automation) -> None:
        out.print(plain(f"run {run_id}: {await auto.sop.cancel(run_id, by=whoami())}"))

    _with_automation(config, go)


def _with_automation(config: str | None, fn: Any) -> None:
    s = settings(config)

    async def go() -> None:
        from smallyi.runtime import Runtime
        from smallyi.sop import automation

        rt = await Runtime.open(s, kind="cli")
        auto = automation.build(rt)
        try:
            await fn(auto)
        finally:
            await auto.close()
            await rt.close()

    run(go)


