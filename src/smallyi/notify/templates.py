"""Message templates: Jinja2 in a sandbox (templates come from config and API users), first line = title.

A template renders to text whose first line becomes the message title and the rest its body.
Defaults exist for every event; ``notify.templates`` in the config overrides them by event name, a
SOP's ``notify.message`` or a schedule's message overrides them for that SOP or schedule.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from smallyi.errors import InputError
from smallyi.notify.base import Message

log = logging.getLogger(__name__)

DEFAULTS: dict[str, str] = {
    "sop_run": (
        "[small-yi] SOP {{ sop or 'run' }} #{{ run_id }} {{ status }}\n"
        "started by {{ started_by }}{% if trigger %} ({{ trigger }}){% endif %}"
        "{% if environment %}, environment {{ environment }}{% endif %}\n"
        "{% if duration is not none %}took {{ '%.1f' % duration }}s\n{% endif %}"
        "{% for s in steps %}- {{ s.id }}: {{ s.status }}{% if s.reason %} ({{ s.reason }}){% endif %}\n{% endfor %}"
        "{% for t in tickets %}ticket {{ t.id }} {{ t.url }}\n{% endfor %}"
        "{% if reason %}{{ reason }}{% endif %}"
    ),
    "task": (
        "[small-yi] task #{{ task_id }} {{ status }}\n"
        "{{ command }}\n"
        "by {{ created_by }} on {{ host_count }} host(s): "
        "{% for k, v in counts.items() %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}"
        "{% if reason %}\n{{ reason }}{% endif %}"
    ),
    "schedule": (
        "[small-yi] schedule {{ schedule }} {{ status }}\n"
        "slot {{ slot }}{% if task_id %}, task #{{ task_id }}{% endif %}{% if run_id %}, SOP run #{{ run_id }}"
        "{% endif %}\n{% if reason %}{{ reason }}{% endif %}"
    ),
    "gitops_sync": (
        "[small-yi] GitOps {{ kind }} #{{ sync_id }} of {{ short }} {{ status }}\n"
        "{{ message }}{% if author %} ({{ author }}){% endif %}\n"
        "by {{ requested_by }} ({{ trigger }}): "
        "{% for k, v in counts.items() %}{{ k }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}\n"
        "{% for p in problems %}- {{ p.host }} {{ p.path }}: {{ p.status }}{% if p.reason %} ({{ p.reason }})"
        "{% endif %}\n{% endfor %}{% if more_problems %}... and {{ more_problems }} more\n{% endif %}"
        "{% if reason %}{{ reason }}{% endif %}"
    ),
    "test": "[small-yi] test message to {{ channel }}\nIf you read this, channel {{ channel }} works.",
    "message": "{{ title }}\n{{ text }}",
}

_ENV = ImmutableSandboxedEnvironment(undefined=Undefined, autoescape=False, trim_blocks=False)


def check(template: str, *, field: str = "template") -> None:
    """InputError naming ``field`` if ``template`` is not valid Jinja2."""
    try:
        _ENV.parse(template)
    except TemplateError as exc:
        raise InputError(f"{field}: not a valid template: {exc}", field=field) from None


def render_text(template: str, data: Mapping[str, Any]) -> str:
    """Render in the sandbox; TemplateError goes to the caller."""
    return _ENV.from_string(template).render(**data)


def message(event: str, data: Mapping[str, Any], *, status: str = "info", override: str | None = None,
            configured: Mapping[str, str] | None = None, link: str = "") -> Message:
    """The message for ``event``: the override, else the configured template, else the default.

    A template that fails to render falls back to the default (and the failure is logged), so a bad
    template never loses a notification.
    """
    candidates = [t for t in (override, (configured or {}).get(event), DEFAULTS.get(event, DEFAULTS["message"]))
                  if t]
    text = ""
    for tpl in candidates:
        try:
            text = render_text(tpl, data).strip()
            break
        except Exception as exc:  # TemplateError, and what an expression raises (1/0, "%d" % "x")
            log.warning("notification template for %s failed (%s: %s); using the next one", event,
                        type(exc).__name__, exc)
    title, _, body = text.partition("\n")
    return Message(title=title.strip() or f"[small-yi] {event}", text=body.strip(), status=status, event=event,
                   link=link, data=dict(data))


_WHOLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)


def render_value(template: str, data: Mapping[str, Any]) -> Any:
    """A string that is one ``{{ expression }}`` keeps the expression's type (a list of hosts stays a
    list in a JSON body); anything else renders to text."""
    m = _WHOLE.match(template)
    if m and "{{" not in m.group(1) and "}}" not in m.group(1):
        value = _ENV.compile_expression(m.group(1).strip(), undefined_to_none=True)(**data)
        return None if isinstance(value, Undefined) else value
    return render_text(template, data)


def render_tree(value: Any, data: Mapping[str, Any]) -> Any:
    """Every string leaf of a JSON-like structure rendered with :func:`render_value`."""
    if isinstance(value, str):
        return render_value(value, data)
    if isinstance(value, dict):
        return {k: render_tree(v, data) for k, v in value.items()}
    if isinstance(value, list):
        return [render_tree(v, data) for v in value]
    return value
