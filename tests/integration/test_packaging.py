"""What ships for operators: the systemd unit, the Dockerfile and its compose file, the example config.

No container engine runs here, so the image is never built: the Dockerfile is parsed, every file it copies
must exist (and not be left out by ``.dockerignore``), and its build stage is replayed on a copy of exactly
what it copies (the wheel), which must carry xterm.js, Swagger UI and the migrations.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from support import ADMIN_HASH, missing

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "systemd" / "small-yi.service"
EXAMPLE = REPO / "packaging" / "config.yaml"
COMPOSE = REPO / "packaging" / "docker" / "compose.yaml"
STATE = "/var/lib/small-yi"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        missing("systemd-analyze not found (Debian's package systemd): the unit cannot be verified")
    return str(found)


def unit_for_verify(tmp_path: Path, text: str) -> Path:
    """The unit with its ExecStart executable swapped for one that exists here (verify checks that it does)."""
    stand_in = tmp_path / "small-yi"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "small-yi.service"
    unit.write_text(text.replace("/usr/local/bin/small-yi", str(stand_in)))
    return unit


def settings_of(unit_text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit_text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.mark.systemd
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` finds nothing to say about the unit (and does complain about a typo)."""
    analyze = systemd_analyze()
    text = UNIT.read_text()
    ok = subprocess.run([analyze, "verify", "--man=no", str(unit_for_verify(tmp_path, text))],
                        capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout + ok.stderr) == (0, "")

    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = unit_for_verify(bad_dir, text.replace("ProtectHome=yes", "ProtectHom=yes"))
    complained = subprocess.run([analyze, "verify", "--man=no", str(bad)], capture_output=True, text=True, timeout=60)
    assert "Unknown key" in complained.stderr and "ProtectHom" in complained.stderr


@pytest.mark.systemd
def test_the_systemd_unit_runs_the_server_confined(tmp_path: Path) -> None:
    """A dedicated user, restarts on failure, the state folder, and hardening that systemd rates "OK"."""
    text = UNIT.read_text()
    s = settings_of(text)
    assert s["ExecStart"] == ["/usr/local/bin/small-yi serve --config /etc/small-yi/config.yaml"]
    assert s["User"] == ["small-yi"] and s["Restart"] == ["on-failure"]
    assert s["StateDirectory"] == ["small-yi"] and s["ConfigurationDirectory"] == ["small-yi"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"] and s["CapabilityBoundingSet"] == [""]
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "@system-service" in s["SystemCallFilter"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # the server reloads its config on SIGHUP

    security = subprocess.run([systemd_analyze(), "security", "--offline=yes", str(unit_for_verify(tmp_path, text))],
                              capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert level, security.stdout + security.stderr
    assert float(level.group(1)) <= 2.0, security.stdout


def test_the_example_config_loads_with_a_real_hash_and_writes_only_under_the_state_folder() -> None:
    """packaging/config.yaml: refused as is (no password set), valid once a hash is pasted, every path that
    the server writes under /var/lib/small-yi (the unit's StateDirectory, the image's volume)."""
    from smallyi.config import parse_settings
    from smallyi.errors import ConfigError

    text = EXAMPLE.read_text()
    with pytest.raises(ConfigError, match="not a bcrypt hash"):
        parse_settings(text, source=str(EXAMPLE))
    s = parse_settings(re.sub(r'password_hash: ".*"', f'password_hash: "{ADMIN_HASH}"', text), source=str(EXAMPLE))
    for written in (s.database.source, s.secrets.key_file, s.audit.key_file, s.gitops.workdir, s.server.pid_file):
        assert str(written).startswith(STATE + "/"), written
    assert s.server.host_port() == ("0.0.0.0", 8080)


# --- Dockerfile ---------------------------------------------------------------------------------------

def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.splitlines():
        if raw.lstrip().startswith("#") and not pending:
            continue
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` (relative, with /) out of the build context."""
    parts = path.split("/")
    for pattern in patterns:
        rx = re.escape(pattern.strip("/")).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(rx, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            return True
    return False


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [p.strip() for p in lines if p.strip() and not p.startswith("#")]


def stages() -> list[list[tuple[str, str]]]:
    """Each FROM's instructions (the global ARGs before the first FROM are left out)."""
    out: list[list[tuple[str, str]]] = []
    for ins in instructions((REPO / "Dockerfile").read_text()):
        if ins[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(ins)
    return out


def copies(stage: list[tuple[str, str]]) -> list[tuple[list[str], str]]:
    """(sources, destination) of a stage's COPY lines that copy from the build context."""
    out = []
    for word, args in stage:
        if word == "COPY" and "--from=" not in args:
            *sources, dest = args.split()
            out.append((sources, dest))
    return out


def test_the_dockerfile_copies_files_that_exist_and_runs_as_a_user_with_a_volume_and_a_healthcheck() -> None:
    """Every COPY source is in the repository and in the build context; the image is the server's."""
    known = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
             "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
    build, final = stages()
    assert {w for st in (build, final) for w, _ in st} <= known
    patterns = dockerignore()
    for sources, _dest in copies(build):
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert not ignored(source.rstrip("/"), patterns), f"COPY {source}: left out by .dockerignore"
    names = {args.split(" AS ")[-1] for w, args in build if w == "FROM" and " AS " in args}
    assert all(args.split("--from=")[1].split()[0] in names for w, args in final if "--from=" in args)
    final_d = dict(final)
    assert final_d["USER"] not in ("root", "0") and final_d["VOLUME"] == f'["{STATE}"]'
    assert "/healthz" in final_d["HEALTHCHECK"] and final_d["EXPOSE"] == "8080"
    assert "serve" in final_d["CMD"] and "/etc/small-yi/config.yaml" in final_d["CMD"]


def test_dockerignore_leaves_out_local_builds_and_keeps_the_sources() -> None:
    """The venvs, node_modules and vendored files stay out; sources and the lock file stay in."""
    patterns = dockerignore()
    for out in (".venv/bin/python", ".venv-dist/bin/pip", "node_modules/@xterm/xterm/package.json",
                "src/smallyi/web/static/vendor/xterm/xterm.mjs", "src/smallyi/cli/__pycache__/main.cpython-311.pyc",
                "dist/small-yi"):
        assert ignored(out, patterns), out
    for kept in ("src/smallyi/cli/main.py", "src/smallyi/storage/migrations/versions/0001_initial_schema.py",
                 "package-lock.json", "scripts/vendor_assets.py", "README.md"):
        assert not ignored(kept, patterns), kept


@pytest.mark.slow
def test_the_build_stage_builds_the_wheel_from_what_it_copies(tmp_path: Path) -> None:
    """Replaying the build stage on a copy of its COPY sources gives a wheel with the vendored front-end files
    (fetched by the build from package-lock.json, not copied in) and the migrations."""
    build, _final = stages()
    context = tmp_path / "src"
    context.mkdir()
    patterns = dockerignore()
    for sources, dest in copies(build):
        for source in sources:
            origin = REPO / source
            if origin.is_file():  # COPY file dir/ or COPY file name
                targets = {origin: context / dest / origin.name if dest.endswith("/") else context / dest}
            else:  # COPY dir/ dest/: the folder's contents
                targets = {f: context / dest / f.relative_to(origin) for f in origin.rglob("*") if f.is_file()}
            for f, target in targets.items():
                if not ignored(f.relative_to(REPO).as_posix(), patterns):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, target)
    assert not (context / "src/smallyi/web/static/vendor").exists()  # built inside, not copied in
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "wheel"),
                            str(context)], capture_output=True, text=True, timeout=600)
    assert wheel.returncode == 0, wheel.stdout + wheel.stderr
    (built,) = (tmp_path / "wheel").glob("small_yi-*.whl")
    names = set(zipfile.ZipFile(built).namelist())
    assert "smallyi/web/static/vendor/xterm/xterm.mjs" in names
    assert "smallyi/web/static/vendor/swagger-ui/swagger-ui-bundle.js" in names
    assert "smallyi/web/static/index.html" in names and "smallyi/storage/migrations/env.py" in names
    shipped = {p.relative_to(REPO / "src").as_posix() for p in (REPO / "src/smallyi/storage/migrations/versions").glob("*.py")}
    assert shipped <= names


def test_the_compose_file_mounts_the_config_and_the_state_volume_and_is_in_the_docs() -> None:
    """compose.yaml builds this repository's image, mounts the config read-only and the state folder as a
    volume; PostgreSQL only with its profile; docs/install.md shows the same file."""
    compose = yaml.safe_load(COMPOSE.read_text())
    server = compose["services"]["server"]
    assert (COMPOSE.parent / server["build"] / "Dockerfile").is_file()
    assert f"data:{STATE}" in server["volumes"]
    assert "./config.yaml:/etc/small-yi/config.yaml:ro" in server["volumes"]
    assert compose["services"]["postgres"]["profiles"] == ["postgres"]
    assert COMPOSE.read_text().strip() in (REPO / "docs" / "install.md").read_text()
