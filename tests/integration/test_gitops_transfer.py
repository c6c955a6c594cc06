"""The engine's file transfer (used by GitOps): atomic put and get, over SFTP on the fleet and locally."""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from smallyi.config import ExecutionSettings, OutputSettings, SSHSettings
from smallyi.execution.engine import Engine
from smallyi.execution.files import FilePut
from smallyi.execution.transfer import TransferOptions
from smallyi.inventory.hosts import HostSpec
from smallyi.testing import Fleet

LOCAL = HostSpec("local", "127.0.0.1", connector="local")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the fleet's login user may write in (the fleet hosts are this machine)."""
    d = Path(f"/tmp/small-yi-transfer-{uuid.uuid4().hex[:8]}")
    d.mkdir()
    d.chmod(0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def local_engine() -> AsyncIterator[Engine]:
    eng = Engine(SSHSettings(private_key=None, known_hosts=None), ExecutionSettings(), OutputSettings())
    yield eng
    await eng.close()


async def test_local_put_is_atomic_with_mode_and_get_reads_back(local_engine: Engine, tmp_path: Path) -> None:
    """Local put writes via a temporary file and rename, sets the mode, keeps no temporary file; get reads it."""
    target = tmp_path / "a.conf"
    target.write_text("old\n")
    inode = target.stat().st_ino
    done = await local_engine.put_files({LOCAL: [FilePut(str(target), b"new\n", mode=0o600)]})
    assert done["local"].ok
    assert target.read_text() == "new\n" and target.stat().st_ino != inode  # replaced, not rewritten in place
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["a.conf"]
    got = await local_engine.get_files({LOCAL: [str(target), str(tmp_path / "absent")]})
    a, absent = got["local"].files
    assert (a.content, a.mode, absent.missing, absent.content) == (b"new\n", 0o600, True, None)


async def test_local_put_keeps_mode_removes_and_names_failures(local_engine: Engine, tmp_path: Path) -> None:
    """Without a mode the old file's mode stays; content None removes; a missing folder fails naming it."""
    target = tmp_path / "k.conf"
    target.write_text("x")
    target.chmod(0o751)
    gone = tmp_path / "gone"
    gone.write_text("bye")
    done = await local_engine.put_files({LOCAL: [
        FilePut(str(target), b"y"), FilePut(str(gone), None), FilePut(str(tmp_path / "no/such/dir/f"), b"z"),
        FilePut(str(tmp_path / "made/dir/f"), b"m", mkdir=True)]})
    results = done["local"].files
    assert [r.ok for r in results] == [True, True, False, True]
    assert stat.S_IMODE(target.stat().st_mode) == 0o751 and not gone.exists()
    assert "the directory" in results[2].error and "does not exist" in results[2].error
    assert done["local"].status == "failed" and "does not exist" in done["local"].reason
    assert (tmp_path / "made/dir/f").read_bytes() == b"m"


@pytest.mark.fleet
async def test_sftp_put_and_get_on_the_fleet(fleet: Fleet, shared_dir: Path) -> None:
    """Over SFTP: each host's file is written atomically with mode and owner, read back, or missing."""
    eng = Engine(fleet.ssh_settings(), ExecutionSettings(), OutputSettings())
    try:
        hosts = fleet.specs(5)
        batch = {h: [FilePut(f"{shared_dir}/{h.name}.conf", f"hi {h.name}\n".encode(), owner=fleet.user, mode=0o640)]
                 for h in hosts}
        done = await eng.put_files(batch, TransferOptions(concurrency=3))
        assert all(done[h.name].ok for h in hosts), {h.name: done[h.name].reason for h in hosts}
        for h in hosts:
            p = shared_dir / f"{h.name}.conf"
            assert p.read_text() == f"hi {h.name}\n" and stat.S_IMODE(p.stat().st_mode) == 0o640
        got = await eng.get_files({h: [f"{shared_dir}/{h.name}.conf", f"{shared_dir}/nope"] for h in hosts})
        for h in hosts:
            mine, nope = got[h.name].files
            assert mine.content == f"hi {h.name}\n".encode() and nope.missing
        assert not [p for p in shared_dir.iterdir() if ".smallyi-" in p.name]
        stats = eng.stats()["connectors"]["ssh"]
        assert stats["opened"] == 5  # put and get shared the pooled connections
    finally:
        await eng.close()


@pytest.mark.fleet
async def test_sftp_failures_are_per_file(fleet: Fleet, shared_dir: Path) -> None:
    """An unknown owner, a folder the login user cannot write and a missing folder fail their file only."""
    eng = Engine(fleet.ssh_settings(), ExecutionSettings(), OutputSettings())
    locked = shared_dir / "locked"
    locked.mkdir()
    # as root the fleet logs in as 'fleet', who may not write in root's 0755 folder; without root it logs
    # in as this user, the owner, who may not write in a 0555 one
    locked.chmod(0o755 if os.geteuid() == 0 else 0o555)
    try:
        host = fleet.specs(1)[0]
        done = await eng.put_files({host: [
            FilePut(f"{shared_dir}/ok", b"ok"), FilePut(f"{shared_dir}/o", b"x", owner="no-such-user"),
            FilePut(f"{locked}/f", b"x"), FilePut(f"{shared_dir}/missing/f", b"x")]})
        ok, owner, denied, missing = done[host.name].files
        assert ok.ok and not owner.ok and not denied.ok and not missing.ok
        assert "no user 'no-such-user'" in owner.error
        assert "permission denied" in denied.error
        assert "does not exist" in missing.error
        assert sorted(p.name for p in shared_dir.iterdir()) == ["locked", "ok"]
    finally:
        await eng.close()


@pytest.mark.fleet
async def test_unreachable_host_gets_one_result(fleet: Fleet, shared_dir: Path) -> None:
    """A host that cannot be reached ends unreachable, with the reason, and the others are unaffected."""
    eng = Engine(fleet.ssh_settings(connect_timeout=3.0), ExecutionSettings(), OutputSettings())
    try:
        good = fleet.specs(1)[0]
        bad = HostSpec("closed", "127.0.0.1", port=1, user="fleet")
        done = await eng.put_files({good: [FilePut(f"{shared_dir}/g", b"g")], bad: [FilePut(f"{shared_dir}/b", b"b")]})
        assert done[good.name].ok
        assert done["closed"].status == "unreachable" and "refused" in done["closed"].reason
    finally:
        await eng.close()
