"""Opening a ticket: render the template's request, POST it, record the id and URL the system answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from jinja2 import TemplateError
from sqlalchemy import select

from smallyi.config import TicketSettings
from smallyi.errors import ConfigError, ExecutionError, NotFound
from smallyi.notify import templates
from smallyi.storage.db import Database
from smallyi.storage.models import Ticket, utcnow
from smallyi.timestamps import iso

log = logging.getLogger(__name__)

#: the part of the answer kept with the ticket
MAX_ANSWER = 16 * 1024


class TicketError(ExecutionError):
    """The ticket system could not be reached or did not say which ticket it opened."""

    code = "ticket_failed"


def lookup(data: Any, path: str) -> Any:
    """``"data.ticket.id"`` read from nested maps (and list indices); None when absent."""
    for part in path.split(".") if path else []:
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def ticket_dict(t: Ticket) -> dict[str, Any]:
    return {"id": t.id, "run_id": t.run_id, "step_id": t.step_id or None, "template": t.template, "status": t.status,
            "ticket_id": t.external_id or None, "url": t.url or None, "requester": t.requester, "sla": t.sla,
            "hosts": list(t.hosts), "title": t.title, "error": t.error or None, "created_at": iso(t.created_at)}


class TicketService:
    def __init__(self, db: Database, settings: TicketSettings, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.db = db
        self.settings = settings
        self._transport = transport

    @property
    def template_names(self) -> frozenset[str]:
        return frozenset(self.settings.templates)

    def request(self, template: str, data: Mapping[str, Any]) -> tuple[str, str, dict[str, str], Any]:
        """(method, url, headers, JSON body) of ``template`` rendered with ``data``. Pure."""
        tpl = self.settings.templates.get(template)
        if tpl is None:
            known = ", ".join(sorted(self.settings.templates)) or "none configured"
            raise NotFound(f"no ticket template named {template!r} (tickets.templates: {known})", field="template")
        url = tpl.url or self.settings.url
        if not url:
            raise ConfigError("tickets.url is not set: configure the ticket system's webhook URL")
        try:
            body = templates.render_tree(tpl.body, data)
            headers = {k: str(templates.render_value(v, data)) for k, v in {**self.settings.headers,
                                                                            **tpl.headers}.items()}
            url = str(templates.render_value(url, data))
        except TemplateError as exc:
            raise ConfigError(f"ticket template {template!r} does not render: {exc}") from None
        return self.settings.method, url, headers, body

    async def create(self, template: str, *, requester: str, hosts: Sequence[str], sla: str = "", title: str = "",
                     run_id: int | None = None, step_id: str = "", extra: Mapping[str, Any] | None = None,
                     ) -> dict[str, Any]:
        """Open a ticket and record it; TicketError (recorded as a failed ticket) when that fails."""
        tpl = self.settings.templates.get(template)
        sla = sla or (tpl.sla if tpl else "")
        title = title or (templates.render_text(tpl.title, {"hosts": list(hosts)}) if tpl and tpl.title else "")
        data: dict[str, Any] = {**(extra or {}), "template": template, "requester": requester, "sla": sla,
                                "hosts": list(hosts), "hosts_text": ", ".join(hosts), "title": title,
                                "run_id": run_id, "step": step_id}
        row = Ticket(run_id=run_id, step_id=step_id, template=template, status="failed", requester=requester,
                     sla=sla, hosts=list(hosts), title=title, created_at=utcnow())
        try:
            method, url, headers, body = self.request(template, data)
            ticket_id, ticket_url, answer = await self._send(method, url, headers, body)
        except (TicketError, ConfigError, NotFound) as exc:
            row.error = exc.message
            await self._save(row)
            raise TicketError(f"ticket ({template}) not opened: {exc.message}") from None
        row.status, row.external_id, row.url, row.response = "created", ticket_id, ticket_url, answer
        await self._save(row)
        log.info("ticket %s opened (%s) for %s", ticket_id, template, ", ".join(hosts[:5]))
        return ticket_dict(row)

    async def _send(self, method: str, url: str, headers: dict[str, str], body: Any) -> tuple[str, str, dict[str, Any]]:
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self.settings.timeout) as client:
                resp = await client.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TicketError(f"the ticket system did not answer: {type(exc).__name__} {exc}") from None
        text = resp.text[:MAX_ANSWER]
        if resp.status_code >= 300:
            raise TicketError(f"the ticket system answered HTTP {resp.status_code}: {text[:300]}")
        try:
            answer = json.loads(resp.content or b"{}")
        except ValueError:
            raise TicketError(f"the ticket system's answer is not JSON: {text[:300]}") from None
        ticket_id = lookup(answer, self.settings.id_field)
        if ticket_id in (None, ""):
            raise TicketError(f"the ticket system's answer has no {self.settings.id_field!r}: {text[:300]}")
        ticket_url = lookup(answer, self.settings.url_field)
        if not ticket_url and self.settings.url_template:
            ticket_url = templates.render_text(self.settings.url_template, {"id": ticket_id, "answer": answer})
        return str(ticket_id), str(ticket_url or ""), answer if isinstance(answer, dict) else {"answer": answer}

    async def _save(self, row: Ticket) -> None:
        async with self.db.session.begin() as s:
            s.add(row)

    async def list(self, *, run_id: int | None = None, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        q = select(Ticket).order_by(Ticket.id.desc()).limit(limit).offset(offset)
        if run_id is not None:
            q = q.where(Ticket.run_id == run_id)
        async with self.db.session() as s:
            return [ticket_dict(t) for t in (await s.scalars(q)).all()]
