"""SOPs from the GitOps repository: a sync hands over ``sops/*.yaml``; each is validated and stored.

GitOps sits below SOPs in the layers, so it calls this through its ``SopSink`` protocol (the runtime
passes a :class:`GitSops`). Each file ``sops/NAME.yaml`` (or ``.yml``) becomes the stored SOP ``NAME``
with origin ``git``, bound to the commit; a ``name:`` inside must match the file name. A file with
errors is reported (file, line, step, field) and not stored; the SOP keeps its last good version
and the other files are stored as usual. Git SOPs whose file is gone are removed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from smallyi.config import Settings
from smallyi.gitops.reports import SopFileProblem, SopsReport
from smallyi.storage.db import Database

#: where SOPs live in the repository
SOP_DIR = "sops/"
_SUFFIXES = (".yaml", ".yml")


def sop_files(files: Mapping[str, str]) -> dict[str, str]:
    """The SOP files among a commit's files: ``sops/*.yaml`` and ``*.yml`` (not in subfolders)."""
    return {p: t for p, t in files.items()
            if p.startswith(SOP_DIR) and "/" not in p[len(SOP_DIR):] and p.endswith(_SUFFIXES)}


def _problem(path: str, message: str, *, line: int | None = None, step: str | None = None,
             field: str | None = None, warning: bool = False) -> SopFileProblem:
    where = ": ".join(x for x in (f"{path}:{line}" if line else path, f"step {step}" if step else "", field or "") if x)
    return {"file": path, "line": line, "step": step, "field": field, "message": message,
            "severity": "warning" if warning else "error",
            "text": f"{where}: {'warning: ' if warning else ''}{message}"}


class GitSops:
    """Validates and stores a commit's SOPs (``adopt``); built per process, cheap until used."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def adopt(self, files: Mapping[str, str], *, repo: str, commit: str, by: str,
                    dry_run: bool = False) -> SopsReport:
        """Store the valid SOPs of ``files`` (a commit's ``sops/``), remove git SOPs gone from it.

        ``dry_run`` says what would change and stores nothing.
        """
        # imported here: `small-yi run` builds the runtime (and this object) but never syncs
        from smallyi.sop.checks import NAME_RE
        from smallyi.sop.store import GitSop, SopStore
        from smallyi.sop.validate import Knowns, parse_sop

        store = SopStore(self.db)
        mine = sop_files(files)
        stem = {p: posixpath.basename(p).rsplit(".", 1)[0] for p in mine}
        knowns = Knowns(ticket_templates=frozenset(self.settings.tickets.templates),
                        environments=self.settings.sop.environments,
                        sops=await store.names() | frozenset(stem.values()))
        problems: list[SopFileProblem] = []
        good: list[GitSop] = []
        bad: set[str] = set()
        seen: dict[str, str] = {}
        for path, text in sorted(mine.items()):
            name = stem[path]
            if not NAME_RE.match(name):
                problems.append(_problem(path, f"{name!r} is not a SOP name: use letters, digits, '.', '_' and '-'",
                                         field="name"))
                continue
            if name in seen:
                problems.append(_problem(path, f"SOP {name!r} is also in {seen[name]}: one file per name",
                                         field="name"))
                bad.add(name)
                continue
            seen[name] = path
            sop, found = parse_sop(text, source=path, knowns=knowns)
            problems += [_problem(path, p.message, line=p.line, step=p.step, field=p.field, warning=p.warning)
                         for p in found]
            if sop is None or any(not p.warning for p in found):
                bad.add(name)
                continue
            if sop.name and sop.name != name:
                problems.append(_problem(path, f"the file says name: {sop.name!r}; a SOP in {SOP_DIR} is named "
                                         f"after its file ({name!r}): rename one of them", field="name"))
                bad.add(name)
                continue
            good.append(GitSop(name, path, text, sop.description))
        report = await store.sync_git(good, repo=repo, commit=commit, by=by, keep=frozenset(bad), dry_run=dry_run)
        problems += [_problem(path, why, field="name") for path, why in report.refused.items()]
        return {"created": report.created, "updated": report.updated, "unchanged": report.unchanged,
                "removed": report.removed, "problems": problems}
