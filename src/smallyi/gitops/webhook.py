"""Push webhooks from GitHub, GitLab and Gitea: check the signature, then read the push. Pure.

| sender | signature header | how it is checked |
|---|---|---|
| GitHub | ``X-Hub-Signature-256: sha256=<hex>`` | HMAC-SHA256 of the raw body with the secret |
| Gitea (and Forgejo) | ``X-Gitea-Signature: <hex>`` | HMAC-SHA256 of the raw body with the secret |
| GitLab | ``X-Gitlab-Token: <secret>`` | the token equals the secret |

Every comparison is constant-time (``hmac.compare_digest``). The signature is checked before the body
is parsed, so an unsigned request costs no JSON parsing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smallyi.errors import AuthError, InputError

_SHA = "0123456789abcdef"


@dataclass(frozen=True)
class Push:
    """What a push event says: who sent it, the ref and the new head (``after``)."""

    provider: str
    event: str
    ref: str = ""
    after: str = ""
    pusher: str = ""

    @property
    def branch(self) -> str:
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else ""

    @property
    def is_push(self) -> bool:
        return self.event == "push"


def provider(headers: Mapping[str, str]) -> str:
    """Which sender a request claims to come from, by its headers (lower-case names)."""
    if "x-gitea-event" in headers or "x-gitea-signature" in headers or "x-gogs-event" in headers:
        return "gitea"
    if "x-gitlab-event" in headers or "x-gitlab-token" in headers:
        return "gitlab"
    if "x-github-event" in headers or "x-hub-signature-256" in headers:
        return "github"
    return ""


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> str:
    """The sender ("github", "gitlab", "gitea") if the signature is right; AuthError saying why not."""
    if not secret:
        raise AuthError("webhooks are refused: gitops.webhook_secret is not set in the server's config")
    sender = provider(headers)
    if sender == "gitlab":
        token = headers.get("x-gitlab-token", "")
        if not token:
            raise AuthError("GitLab webhook without an X-Gitlab-Token header")
        if not hmac.compare_digest(token.encode(), secret.encode()):
            raise AuthError("GitLab webhook with a wrong X-Gitlab-Token")
        return sender
    if sender in ("github", "gitea"):
        name = "x-hub-signature-256" if sender == "github" else "x-gitea-signature"
        given = headers.get(name, "").strip().lower()
        if sender == "github":
            if not given.startswith("sha256="):
                raise AuthError("GitHub webhook without an X-Hub-Signature-256: sha256=... header")
            given = given.removeprefix("sha256=")
        if not given:
            raise AuthError(f"{sender.capitalize()} webhook without an {_title(name)} header")
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if len(given) != len(expected) or any(c not in _SHA for c in given) or \
                not hmac.compare_digest(given.encode(), expected.encode()):
            raise AuthError(f"{sender.capitalize()} webhook with a wrong {_title(name)} signature")
        return sender
    raise AuthError("not a GitHub, GitLab or Gitea webhook (no X-GitHub-Event, X-Gitlab-Event or "
                    "X-Gitea-Event header)")


def parse(sender: str, headers: Mapping[str, str], body: bytes) -> Push:
    """The push a verified request carries; InputError for a body that is not a push event's JSON."""
    event = {
        "github": headers.get("x-github-event", ""),
        "gitea": headers.get("x-gitea-event", "") or headers.get("x-gogs-event", ""),
        "gitlab": headers.get("x-gitlab-event", ""),
    }.get(sender, "")
    event = "push" if event.lower() in ("push", "push hook") else event.lower() or "unknown"
    if event != "push":
        return Push(sender, event)
    try:
        payload: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError("the webhook body is not JSON", field="body") from None
    if not isinstance(payload, dict):
        raise InputError("the webhook body is not a JSON object", field="body")
    ref = payload.get("ref")
    after = payload.get("after") or payload.get("checkout_sha") or ""
    if not isinstance(ref, str) or not isinstance(after, str):
        raise InputError("the push event has no 'ref' or 'after'", field="body")
    pusher = payload.get("pusher") or {}
    who = ""
    if isinstance(pusher, dict):
        who = str(pusher.get("name") or pusher.get("login") or pusher.get("username") or "")
    who = who or str(payload.get("user_username") or payload.get("user_name") or "")
    return Push(sender, "push", ref, after.lower(), who)


def sign_github(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value for ``body`` (tests, and hooks that post to small-yi)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_gitea(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _title(header: str) -> str:
    return "-".join(p.capitalize() for p in header.split("-"))
