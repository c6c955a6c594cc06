"""A real ``small-yi serve`` on the Redis bus (``bus.driver: redis``): a task's output reaches a WebSocket
viewer through Redis; a Redis that does not answer stops the start with a message naming ``bus.url``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from support import RedisSpace, cli, free_port, start_server, task_stream, write_config


@pytest.mark.redis
def test_a_viewer_follows_a_task_through_redis(tmp_path: Path, redis_space: RedisSpace) -> None:
    """A task on ``local`` prints while a viewer watches: the viewer gets every line once, in order, and
    the task's stream in Redis holds the same events, then the end marker."""
    cfg = write_config(tmp_path, extra=f"bus:\n  driver: redis\n  url: {redis_space.url}\n"
                                       f"  prefix: \"{redis_space.prefix}\"\n")
    srv = start_server(cfg)
    try:
        token = srv.login()
        with srv.client(token) as c:
            t = c.post("/api/v1/tasks", json={"target": {"group": "local"}, "timeout": "30s",
                                              "cmd": "for i in $(seq 1 40); do echo line$i; sleep 0.02; done"})
            assert t.status_code == 201, t.text
            task_id = t.json()["id"]
            events = task_stream(srv, token, task_id)
            assert c.get(f"/api/v1/tasks/{task_id}").json()["status"] == "success"
    finally:
        srv.stop()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["text"] for e in events if e["stream"] == "stdout"] == [f"line{i}" for i in range(1, 41)]
    client = redis.Redis.from_url(redis_space.url)
    try:
        entries = client.xrange(f"{redis_space.prefix}bus:task:{task_id}")
    finally:
        client.close()
    published = [json.loads(fields[b"e"]) for _, fields in entries if b"e" in fields]
    assert [(e["seq"], e["stream"], e["text"]) for e in published if e["seq"] is not None] == [
        (e["seq"], e["stream"], e["text"]) for e in events]
    assert published[-1]["stream"] == "task" and published[-1]["status"] == "success"
    assert b"end" in entries[-1][1]


def test_a_redis_that_does_not_answer_stops_the_start(tmp_path: Path) -> None:
    """``serve`` with ``bus.url`` pointing where no Redis listens exits at once with a message naming the key
    and the URL (its password hidden)."""
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    cfg = write_config(tmp_path, extra=f"bus:\n  driver: redis\n  url: {url}\n")
    r = cli("serve", "--listen", f"127.0.0.1:{free_port()}", config=cfg, timeout=60)
    assert r.returncode != 0
    assert "event bus redis://:***@127.0.0.1:" in r.stderr and "check bus.url in the config" in r.stderr, r.stderr
    assert "s3cret" not in r.stderr + r.stdout
