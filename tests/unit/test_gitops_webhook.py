"""Push webhooks: signatures of GitHub, GitLab and Gitea checked (constant-time), pushes read."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from smallyi.errors import AuthError, InputError
from smallyi.gitops import webhook

SECRET = "s3cret"
BODY = json.dumps({"ref": "refs/heads/main", "after": "A" * 40, "pusher": {"name": "ann"}}).encode()


def test_github_signature_accepted() -> None:
    """A GitHub push with the right X-Hub-Signature-256 is accepted and read."""
    headers = {"x-github-event": "push", "x-hub-signature-256": webhook.sign_github(SECRET, BODY)}
    sender = webhook.verify(headers, BODY, SECRET)
    push = webhook.parse(sender, headers, BODY)
    assert (sender, push.branch, push.after, push.pusher) == ("github", "main", "a" * 40, "ann")


def test_gitea_signature_accepted() -> None:
    """A Gitea push signed in X-Gitea-Signature (bare hex HMAC) is accepted."""
    headers = {"x-gitea-event": "push", "x-gitea-signature": hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()}
    assert webhook.verify(headers, BODY, SECRET) == "gitea"
    assert webhook.parse("gitea", headers, BODY).is_push


def test_gitlab_token_accepted() -> None:
    """A GitLab push carrying the secret in X-Gitlab-Token is accepted; 'Push Hook' is a push."""
    body = json.dumps({"ref": "refs/heads/main", "checkout_sha": "b" * 40, "user_username": "bob"}).encode()
    headers = {"x-gitlab-event": "Push Hook", "x-gitlab-token": SECRET}
    push = webhook.parse(webhook.verify(headers, body, SECRET), headers, body)
    assert (push.provider, push.after, push.pusher) == ("gitlab", "b" * 40, "bob")


@pytest.mark.parametrize("headers, why", [
    ({"x-github-event": "push"}, "without an X-Hub-Signature-256"),
    ({"x-github-event": "push", "x-hub-signature-256": "sha256=" + "0" * 64}, "wrong X-Hub-Signature-256"),
    ({"x-github-event": "push", "x-hub-signature-256": webhook.sign_github("other", BODY)}, "wrong"),
    ({"x-github-event": "push", "x-hub-signature-256": "sha1=abc"}, "without an X-Hub-Signature-256"),
    ({"x-gitea-event": "push", "x-gitea-signature": "zz"}, "wrong X-Gitea-Signature"),
    ({"x-gitea-event": "push"}, "without an X-Gitea-Signature"),
    ({"x-gitlab-event": "Push Hook", "x-gitlab-token": "guess"}, "wrong X-Gitlab-Token"),
    ({"x-gitlab-event": "Push Hook"}, "without an X-Gitlab-Token"),
    ({}, "not a GitHub, GitLab or Gitea webhook"),
])
def test_bad_or_missing_signature_refused(headers: dict[str, str], why: str) -> None:
    """Wrong or missing signatures are AuthError saying which header is at fault."""
    with pytest.raises(AuthError, match=why):
        webhook.verify(headers, BODY, SECRET)


def test_signature_over_another_body_refused() -> None:
    """A signature made for one body does not let another body through."""
    headers = {"x-github-event": "push", "x-hub-signature-256": webhook.sign_github(SECRET, BODY)}
    with pytest.raises(AuthError):
        webhook.verify(headers, BODY + b" ", SECRET)


def test_no_secret_configured_refuses_everything() -> None:
    """Without gitops.webhook_secret, even an 'empty' signature cannot pass."""
    headers = {"x-github-event": "push", "x-hub-signature-256": webhook.sign_github("", BODY)}
    with pytest.raises(AuthError, match="webhook_secret is not set"):
        webhook.verify(headers, BODY, "")


def test_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every signature comparison goes through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhook.hmac, "compare_digest", spy)
    webhook.verify({"x-github-event": "push", "x-hub-signature-256": webhook.sign_github(SECRET, BODY)}, BODY, SECRET)
    webhook.verify({"x-gitlab-token": SECRET}, BODY, SECRET)
    assert len(calls) == 2


def test_ping_is_not_a_push() -> None:
    """A signed non-push event (GitHub's ping) is read as such, not as a push."""
    headers = {"x-github-event": "ping"}
    push = webhook.parse("github", headers, b"{}")
    assert not push.is_push and push.event == "ping"


def test_push_body_must_be_json_with_ref() -> None:
    """A signed push whose body is not a push event's JSON is bad input."""
    with pytest.raises(InputError, match="not JSON"):
        webhook.parse("github", {"x-github-event": "push"}, b"not json")
    with pytest.raises(InputError, match="no 'ref'"):
        webhook.parse("github", {"x-github-event": "push"}, b'{"after": "x"}')


def test_tag_push_has_no_branch() -> None:
    """A push to a tag names no branch (so it never matches gitops.branch)."""
    body = json.dumps({"ref": "refs/tags/v1", "after": "c" * 40}).encode()
    assert webhook.parse("github", {"x-github-event": "push"}, body).branch == ""
