"""What changed between two configs, and which of it a running server takes without a restart. Pure.

A reload (``small-yi reload``, SIGHUP, ``POST /api/v1/admin/reload``) compares the running config with
the file key by key (``server.listen``, ``auth.users``, ``notify.channels``...). Every key is in
:data:`LIVE` (applied at once) or in :data:`RESTART` (with the reason it waits for the next start); a
key in neither waits for a restart too, so a key added to the config without a decision here is never
half-applied (``tests/unit/test_config_changes.py`` fails until it is classified).

Details say what changed without secret values: a field declared ``repr=False`` (keys, webhook
secrets, channel URLs) or listed in :data:`SECRET` shows only "changed"; a database URL shows no
password; collections show the names of what was added, removed or changed, never their contents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from smallyi.config import Duration, Settings, Size, redact_url
from smallyi.durations import format_duration, format_size

#: the validators that mark a field as a duration (shown as ``10s``) or a size (``32MiB``)
_DURATION: tuple[Any, ...] = getattr(Duration, "__metadata__", ())
_SIZE: tuple[Any, ...] = getattr(Size, "__metadata__", ())

#: keys (or whole sections) a running server cannot take, and why; shown as "needs a restart"
RESTART: dict[str, str] = {
    "server.listen": "the server's socket is bound when it starts",
    "server.base_path": "the routes and the login cookie's path are set when the server starts",
    "server.pid_file": "the server writes its pid file when it starts",
    "server.max_body": "the HTTP server's limits are set when it starts",
    "server.max_ws_message": "the HTTP server's limits are set when it starts",
    "server.trusted_proxies": "the HTTP server's proxy trust is set when it starts",
    "database": "the database is connected and migrated when the server starts",
    "bus": "the event bus is connected when the server starts",
    "secrets": "the master key is loaded when the server starts",
    "audit.mac_key": "the audit key is loaded when the server starts",
    "audit.mac_key_env": "the audit key is loaded when the server starts",
    "audit.key_file": "the audit key is loaded when the server starts",
    "audit.anchor_file": "the audit anchor is set up when the server starts",
    "audit.anchor_interval": "the audit anchor's sender starts with the server",
    "audit.anchor_syslog": "the audit anchor's sender starts with the server",
    "audit.anchor_webhook": "the audit anchor's sender starts with the server",
    "auth.session_recheck": "the WebSocket session checks are set up when the server starts",
    "gitops.repo": "the GitOps service and its pollers start with the server",
    "gitops.branch": "the GitOps service and its pollers start with the server",
    "gitops.poll_interval": "the GitOps pollers start with the server",
    "gitops.drift_interval": "the GitOps pollers start with the server",
    "gitops.workdir": "the GitOps service and its pollers start with the server",
    "gitops.timeout": "the GitOps service starts with the server",
    "gitops.concurrency": "the GitOps service starts with the server",
    "gitops.render_timeout": "the GitOps rendering process starts with the server",
    "gitops.render_memory": "the GitOps rendering process starts with the server",
    "gitops.render_max_output": "the GitOps rendering process starts with the server",
    "sop.lease": "the lookout for abandoned SOP runs starts with the server",
    "schedules.enabled": "the scheduler starts (or not) with the server",
}

#: keys (or whole sections) a reload applies at once; what already runs keeps what it started with
LIVE: frozenset[str] = frozenset({
    "server.cookie_secure",
    "auth.users", "auth.session_ttl", "auth.login_max_failures", "auth.login_window", "auth.address_max_failures",
    "ssh",  # every key: new connections use them; pooled connections made before are not reused
    "execution", "output", "roles", "policy",
    "audit.retention_days", "audit.purge_interval", "audit.max_admins", "audit.unused_days",
    "gitops.webhook_secret", "gitops.notify", "gitops.ssh_key_secrets",
    "notify", "tickets",
    "sop.environments", "sop.approval_timeout", "sop.max_parallel", "sop.max_depth",
    "schedules.timezone", "schedules.grace",
    "terminal",
})

#: keys whose values are credentials although their field does not say so (``repr=False``)
SECRET: frozenset[str] = frozenset({"tickets.url"})

#: not a key of the file: where relative paths were resolved from
_DERIVED = frozenset({"base_dir"})


@dataclass(frozen=True, slots=True)
class Change:
    """One key that differs: what changed (no secret values) and, when it waits, why."""

    key: str
    detail: str
    #: why the change waits for a restart; empty: a reload applies it
    restart: str = ""

    @property
    def live(self) -> bool:
        return not self.restart

    def describe(self) -> str:
        return f"{self.key} ({self.detail})" if self.detail else self.key

    def to_dict(self) -> dict[str, str]:
        out = {"key": self.key, "detail": self.detail}
        if self.restart:
            out["restart"] = self.restart
        return out


def classify(key: str) -> str:
    """Why ``key`` (``section.field``) needs a restart, or "" when a reload applies it."""
    section = key.split(".", 1)[0]
    if key in RESTART or section in RESTART:
        return RESTART.get(key) or RESTART[section]
    if key in LIVE or section in LIVE:
        return ""
    return "small-yi does not apply this key while it runs"


def keys() -> list[str]:
    """Every key :func:`compare` reports on, in file order."""
    out: list[str] = []
    for name, info in Settings.model_fields.items():
        if name in _DERIVED:
            continue
        model = _model_of(info)
        if model is None:
            out.append(name)
        else:
            out.extend(f"{name}.{f}" for f in model.model_fields)
    return out


def compare(old: Settings, new: Settings) -> list[Change]:
    """Every key whose value differs, in file order, with what changed and whether it waits for a restart."""
    changes: list[Change] = []
    for name, info in Settings.model_fields.items():
        if name in _DERIVED:
            continue
        a, b = getattr(old, name), getattr(new, name)
        if a == b:
            continue
        if isinstance(a, BaseModel):
            for field, finfo in type(a).model_fields.items():
                x, y = getattr(a, field), getattr(b, field)
                if x != y:
                    key = f"{name}.{field}"
                    changes.append(Change(key, _detail(key, finfo, x, y), classify(key)))
        else:
            changes.append(Change(name, _detail(name, info, a, b), classify(name)))
    return changes


def merge(old: Settings, new: Settings, changes: Sequence[Change]) -> Settings:
    """``new``, with the changes that wait for a restart kept at ``old``'s values: what the server now runs."""
    waiting: dict[str, dict[str, Any]] = {}
    for c in changes:
        if c.live:
            continue
        section, _, field = c.key.partition(".")
        if field:
            waiting.setdefault(section, {})[field] = getattr(getattr(old, section), field)
        else:
            waiting[section] = {}
    update: dict[str, Any] = {}
    for section, fields in waiting.items():
        update[section] = getattr(new, section).model_copy(update=fields) if fields else getattr(old, section)
    return new.model_copy(update=update) if update else new


def _model_of(info: FieldInfo) -> type[BaseModel] | None:
    t = info.annotation
    return t if isinstance(t, type) and issubclass(t, BaseModel) else None


def _secret(key: str, info: FieldInfo | None) -> bool:
    return key in SECRET or (info is not None and info.repr is False)


def _detail(key: str, info: FieldInfo | None, old: Any, new: Any) -> str:
    """What changed from ``old`` to ``new``, fit for a log line and the audit trail."""
    if _secret(key, info):
        if not old or not new:
            return "set" if new else "removed"
        return "changed"
    if key in ("database.source", "bus.url"):
        return f"{redact_url(str(old))} -> {redact_url(str(new))}"
    if key == "auth.users":
        return _named(_by(old, "username"), _by(new, "username"), _user_change)
    if isinstance(old, BaseModel) and isinstance(new, BaseModel):
        return _fields(key, old, new)
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return _named(old, new, None)
    if _models(old) or _models(new):
        return _named(_by(old, "name"), _by(new, "name"), None)
    return f"{_show(info, old)} -> {_show(info, new)}"


def _fields(key: str, old: BaseModel, new: BaseModel) -> str:
    parts = []
    for field, finfo in type(old).model_fields.items():
        x, y = getattr(old, field), getattr(new, field)
        if x != y:
            parts.append(f"{field} {_detail(f'{key}.{field}', finfo, x, y)}")
    return "; ".join(parts)


def _models(value: Any) -> bool:
    return isinstance(value, list | tuple) and any(isinstance(v, BaseModel) for v in value)


def _by(items: Sequence[Any], attr: str) -> dict[str, Any]:
    """Items by name (``username``, ``name``; unnamed ones by position: ``#2``)."""
    return {(getattr(v, attr, "") or f"#{i + 1}"): v for i, v in enumerate(items)}


def _named(old: Mapping[str, Any], new: Mapping[str, Any], explain: Any) -> str:
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = [k for k in new if k in old and new[k] != old[k]]
    parts = []
    if added:
        parts.append("added " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    if changed:
        parts.append("changed " + ", ".join(f"{k} ({explain(old[k], new[k])})" if explain else k for k in changed))
    if not parts and list(old) != list(new):
        parts.append("reordered")
    return "; ".join(parts)


def _user_change(old: Any, new: Any) -> str:
    parts = []
    if old.password_hash != new.password_hash:
        parts.append("password")
    if old.role != new.role:
        parts.append(f"role {old.role} -> {new.role}")
    if old.groups != new.groups:
        parts.append(f"groups {_show(None, old.groups)} -> {_show(None, new.groups)}")
    if old.disabled != new.disabled:
        parts.append("disabled" if new.disabled else "enabled")
    if old.keep_tokens_on_password_change != new.keep_tokens_on_password_change:
        parts.append(f"keep_tokens_on_password_change {new.keep_tokens_on_password_change}")
    return ", ".join(parts)


def _show(info: FieldInfo | None, value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if info is not None and isinstance(value, int | float):
        if any(m in _DURATION for m in info.metadata):
            return format_duration(float(value))
        if any(m in _SIZE for m in info.metadata):
            return format_size(int(value))
    if isinstance(value, list | tuple):
        shown = ", ".join(str(v) for v in value[:10]) + (f", +{len(value) - 10}" if len(value) > 10 else "")
        return f"[{shown}]"
    text = str(value) if value != "" else '""'
    return text if len(text) <= 200 else text[:200] + "..."
