"""The SOP and GitOps services' typed answers have exactly the keys their API models declare, a key they
may leave out is one the model may miss, and their statuses keep the values the database holds."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel

from smallyi.api.schemas import approvals as a
from smallyi.api.schemas import gitops as g
from smallyi.api.schemas import sop as s
from smallyi.api.schemas import sop_runs as r
from smallyi.approvals import requests, steps
from smallyi.gitops import reports
from smallyi.gitops.store import host_status
from smallyi.sop import preview, problems, records, store, variables
from smallyi.sop.statuses import FINAL_RUN, FINAL_STEP, SopRunStatus, SopStepStatus
from smallyi.types import ApprovalStatus

PAIRS: list[tuple[Any, type[BaseModel]]] = [
    (records.RunDict, r.SopRunOut), (records.StepDict, r.RunStepOut), (steps.StepApprovalDict, r.ApprovalOut), (requests.RequestDict, a.CommandApprovalOut),
    (records.EventDict, r.RunEventOut), (store.SopDict, s.SopOut), (store.GitOrigin, s.GitOriginOut),
    (preview.Preview, s.PreviewOut), (preview.PreviewStep, s.PreviewStepOut), (problems.ProblemDict, s.ProblemOut),
    (variables.VarType, s.VarTypeOut),
    (reports.CommitInfo, g.CommitOut), (reports.FileResult, g.FileOut), (reports.HostResult, g.HostFilesOut),
    (reports.SopFileProblem, g.SopProblemOut), (reports.SopsReport, g.SopsReportOut),
    (reports.SyncCounts, g.SyncCountsOut), (reports.SyncSummary, g.SyncOut), (reports.SyncRecord, g.SyncDetailOut),
    (reports.SyncPlan, g.GitOpsPlanOut), (reports.GitOpsStatus, g.GitOpsStatusOut),
    (reports.WebhookAnswer, g.WebhookOut),
]
#: keys a model requires that the typed answer may leave out, and why
LEFT_OUT = {(store.SopDict, "source"): "lists of SOPs leave the YAML out (SopSummaryOut)"}


def optional_keys(td: Any) -> set[str]:
    """Keys a TypedDict may leave out (``NotRequired``, or every key of a ``total=False`` one)."""
    hints = typing.get_type_hints(td, include_extras=True)
    return set(td.__optional_keys__) | {k for k, v in hints.items() if typing.get_origin(v) is typing.NotRequired}


@pytest.mark.parametrize(("td", "model"), PAIRS, ids=lambda x: x.__name__)
def test_a_typed_answer_has_the_keys_of_its_api_model(td: Any, model: type[BaseModel]) -> None:
    """Same keys; each key the answer may leave out has a default in the model (the route leaves it unset)."""
    assert set(typing.get_type_hints(td)) == set(model.model_fields)
    for key in optional_keys(td):
        assert not model.model_fields[key].is_required() or (td, key) in LEFT_OUT, key


def test_a_sop_list_item_is_a_sop_without_its_yaml() -> None:
    """The one key a stored SOP's answer leaves out in lists is the YAML."""
    assert optional_keys(store.SopDict) == {"source"}
    assert set(typing.get_type_hints(store.SopDict)) - {"source"} == set(s.SopSummaryOut.model_fields)


def test_statuses_keep_the_values_the_database_holds() -> None:
    """Rows written before the enums read back as the same members; the final ones are as before."""
    assert list(SopRunStatus) == ["running", "success", "failed", "cancelled", "interrupted"]
    assert list(SopStepStatus) == ["pending", "running", "waiting", "success", "failed", "skipped", "cancelled",
                                   "interrupted", "timeout"]
    assert list(ApprovalStatus) == ["pending", "approved", "rejected", "expired", "cancelled"]
    assert list(reports.SyncStatus) == ["queued", "running", "success", "failed", "error", "interrupted"]
    assert list(reports.SyncKind) == ["sync", "rollback", "drift"]
    assert list(reports.FileStatus) == ["unchanged", "changed", "restored", "failed", "drifted", "missing"]
    assert set(FINAL_RUN) == {"success", "failed", "cancelled", "interrupted"}
    assert set(FINAL_STEP) == {"success", "failed", "skipped", "cancelled", "interrupted", "timeout"}
    assert "timeout" in FINAL_STEP and "waiting" not in FINAL_STEP  # plain strings from a row match
    assert [st for st in SopStepStatus if st.in_flight] == ["running", "waiting"]
    assert [st for st in SopStepStatus if st.failure] == ["failed", "timeout"]
    assert [st for st in reports.SyncStatus if not st.final] == ["queued", "running"]


def test_a_hosts_result_is_its_most_telling_file_status() -> None:
    """Statuses read back from rows as plain text give the enum member."""
    assert host_status(["unchanged", "drifted", "changed"]) is reports.FileStatus.DRIFTED
    assert host_status([]) is reports.FileStatus.UNCHANGED
