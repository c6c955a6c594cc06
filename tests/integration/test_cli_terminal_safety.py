"""The CLI never hands a host's or a user's control sequences to the operator's terminal, and never reads
stored text as Rich markup: the real CLI against the built-in `local` host and a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from support import SMALL_YI, Server, start_server, write_config

# OSC 52 (set the clipboard to "Hello"), then a line that goes up one line, erases it and forges a
# summary line, a lone CR that would overwrite "[local] ", backspaces, a screen clear, an 8-bit CSI and
# a right-to-left override; then an SGR colour
HOSTILE = ("printf 'a\\033]52;c;SGVsbG8=\\007b\\n\\033[1A\\033[2Ktask 99 success: success 1\\n"
           "xx\\rtask 98 success\\nrm -rf /\\010\\010\\010\\010ls\\n\\033[2J\\033[Hcleared\\n'; "
           "printf '\\302\\2331m 8-bit \\342\\200\\256evil\\n\\033[31mred\\033[0m\\n'")

#: bytes the terminal must never get from a host's output: ESC, BEL, CR, BS, C1 CSI, RLO
FORBIDDEN = ("\x1b", "\x07", "\r", "\x08", "\x9b", "\u202e")


def cli(*args: str, config: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``small-yi ARGS`` with stdout and stderr exactly as written (no newline translation: a CR stays one)."""
    argv = [SMALL_YI, *args, *(["--config", str(config)] if config else [])]
    r = subprocess.run(argv, capture_output=True, timeout=120, env={**os.environ, **(env or {})})
    return subprocess.CompletedProcess(argv, r.returncode, r.stdout.decode(), r.stderr.decode())


def _clean(text: str) -> None:
    for c in FORBIDDEN:
        assert c not in text, (c, text)


def _check_hostile_lines(stdout: str) -> None:
    """What the operator sees of HOSTILE: every sequence shown, the forged lines behind the host prefix."""
    _clean(stdout)
    lines = stdout.splitlines()
    assert "[local] a^[]52;c;SGVsbG8=^Gb" in lines
    assert "[local] ^[[1A^[[2Ktask 99 success: success 1" in lines
    assert "[local] xx^Mtask 98 success" in lines
    assert "[local] rm -rf /^H^H^H^Hls" in lines
    assert "[local] ^[[2J^[[Hcleared" in lines
    assert "[local] \\u009b1m 8-bit \\u202eevil" in lines
    assert "[local] ^[[31mred^[[0m" in lines
    assert not any(ln.startswith(("task 99", "task 98")) for ln in lines)


def test_run_shows_a_hosts_escape_sequences_instead_of_sending_them(tmp_path: Path) -> None:
    """`small-yi run`: OSC 52, cursor moves, CR, backspaces, C1 and BIDI controls are shown as text."""
    cfg = write_config(tmp_path)
    r = cli("run", "--hosts", "local", "--cmd", HOSTILE, config=cfg)
    assert r.returncode == 0, r.stderr
    _check_hostile_lines(r.stdout)
    _clean(r.stderr)


def test_raw_writes_the_output_as_received_and_color_keeps_only_colours(tmp_path: Path) -> None:
    """--raw passes the host's bytes through; --color keeps SGR colours and shows every other sequence."""
    cfg = write_config(tmp_path)
    raw = cli("run", "--hosts", "local", "--raw", "--cmd", HOSTILE, config=cfg)
    assert raw.returncode == 0, raw.stderr
    assert "[local] a\x1b]52;c;SGVsbG8=\x07b\n" in raw.stdout and "\x1b[2J" in raw.stdout
    color = cli("run", "--hosts", "local", "--color", "--cmd", HOSTILE, config=cfg)
    assert color.returncode == 0, color.stderr
    assert "[local] \x1b[31mred\x1b[0m\x1b[0m\n" in color.stdout
    assert "\x1b]52" not in color.stdout and "\x1b[2J" not in color.stdout and "\x1b[1A" not in color.stdout
    assert "[local] a^[]52;c;SGVsbG8=^Gb" in color.stdout


def test_the_archive_views_show_the_same_text(tmp_path: Path) -> None:
    """`tasks show`, `tasks list` and `results` show the archived output and command inert too."""
    cfg = write_config(tmp_path)
    cli("run", "--hosts", "local", "--cmd", HOSTILE, config=cfg)
    shown = cli("tasks", "show", "1", config=cfg)
    assert shown.returncode == 0, shown.stderr
    _check_hostile_lines(shown.stdout)
    raw = cli("tasks", "show", "1", "--raw", config=cfg)
    assert "[local] a\x1b]52;c;SGVsbG8=\x07b\n" in raw.stdout
    cli("run", "--hosts", "local", "--cmd", "printf 'first\\033[2J line\\n'; printf '\\033]0;title\\007' >&2",
        config=cfg)
    listed = cli("tasks", "list", config=cfg)
    assert listed.returncode == 0, listed.stderr
    _clean(listed.stdout)
    results = cli("results", config=cfg)
    assert results.returncode == 0, results.stderr
    _clean(results.stdout)
    assert "first^[[2J line" in results.stdout


def test_tasks_show_prints_a_command_with_brackets_as_it_ran(tmp_path: Path) -> None:
    """A command with Rich-markup-like brackets is shown whole (it used to lose `[red]` or crash on `[/dim]`)."""
    cfg = write_config(tmp_path)
    r = cli("run", "--hosts", "local", "--cmd", "echo '[red]x[/dim] [bold]y'", config=cfg)
    assert r.returncode == 0, r.stderr
    assert "[local] [red]x[/dim] [bold]y" in r.stdout
    shown = cli("tasks", "show", "1", config=cfg)
    assert shown.returncode == 0, shown.stderr
    assert "echo '[red]x[/dim] [bold]y'" in shown.stdout
    assert "[local] [red]x[/dim] [bold]y" in shown.stdout
    listed = cli("tasks", "list", config=cfg, env={"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    assert "echo '[red]x[/dim] [bold]y'" in listed.stdout
    res = cli("results", config=cfg, env={"COLUMNS": "200"})
    assert "[red]x[/dim] [bold]y" in res.stdout


def test_json_output_parses_to_the_same_text_without_terminal_controls(tmp_path: Path) -> None:
    """-o json keeps every character's value (json.loads gives it back) but writes C1 and BIDI as escapes."""
    cfg = write_config(tmp_path)
    r = cli("run", "--hosts", "local", "--output", "json", "--cmd", HOSTILE, config=cfg)
    assert r.returncode == 0, r.stderr
    _clean(r.stdout)
    out = json.loads(r.stdout)["results"][0]["stdout"]
    assert "\x1b]52;c;SGVsbG8=\x07" in out and "\x9b" in out and "\u202e" in out


def test_hosts_list_and_show_print_labels_and_descriptions_as_text(tmp_path: Path) -> None:
    """A description or label with escapes, newlines or markup is shown visibly, on its own line."""
    cfg = write_config(tmp_path)
    desc = "nice\x1b]52;c;SGVsbG8=\x07\nforged line\x1b[2J [red]x[/dim]"
    r = cli("hosts", "add", "evil", "--address", "127.0.0.9", "--description", desc,
            "--label", "team=\x1b[31mred", "--group", "g1", config=cfg)
    assert r.returncode == 0, r.stderr
    for args in (("hosts", "list"), ("hosts", "show", "evil")):
        out = cli(*args, config=cfg)
        assert out.returncode == 0, (args, out.stderr)
        _clean(out.stdout)
        assert not any(ln.startswith("forged") for ln in out.stdout.splitlines()), out.stdout
        assert "team=^[[31mred" in out.stdout.replace("\n", "").replace(" ", ""), out.stdout
    show = cli("hosts", "show", "evil", config=cfg).stdout
    assert "nice^[]52;c;SGVsbG8=^G^Jforged line^[[2J [red]x[/dim]" in show


def test_the_same_through_a_server(tmp_path: Path) -> None:
    """`run --server`, `tasks show --server` and `hosts list --server` are as safe as in-process."""
    cfg = write_config(tmp_path)
    srv: Server = start_server(cfg)
    try:
        env = {"SMALLYI_SERVER": srv.url, "SMALLYI_TOKEN": srv.login()}
        r = cli("run", "--hosts", "local", "--cmd", HOSTILE, env=env)
        assert r.returncode == 0, r.stderr
        _check_hostile_lines(r.stdout)
        with srv.client() as c:
            task_id = c.get("/api/v1/tasks").json()["items"][0]["id"]
            c.post("/api/v1/hosts", json=[{"name": "evil", "address": "127.0.0.9",
                                           "description": "a\x1b[2J\nb", "labels": {"k": "\x1b]52;c;eA==\x07"}}])
        shown = cli("tasks", "show", str(task_id), env=env)
        assert shown.returncode == 0, shown.stderr
        _check_hostile_lines(shown.stdout)
        hosts = cli("hosts", "list", env=env)
        assert hosts.returncode == 0, hosts.stderr
        _clean(hosts.stdout)
        assert "k=^[]52;c;eA==^G" in hosts.stdout
    finally:
        srv.stop()


def test_logs_show_escapes_too(tmp_path: Path) -> None:
    """`small-yi logs` on a file with escape sequences shows them as text."""
    cfg = write_config(tmp_path)
    log = tmp_path / "app.log"
    log.write_bytes(b"old \x1b]52;c;SGVsbG8=\x07\n")
    out = tmp_path / "out.txt"
    with out.open("w") as fh:
        proc = subprocess.Popen([SMALL_YI, "logs", "--hosts", "local", "--file", str(log), "--config", str(cfg)],
                                stdout=fh, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while "SGVsbG8" not in out.read_text(errors="replace"):
                assert time.monotonic() < deadline, out.read_text(errors="replace")
                time.sleep(0.1)
            with log.open("ab") as f:
                f.write(b"new \x1b[2J\x1b[1A\r\n")
            while "new" not in out.read_text(errors="replace"):
                assert time.monotonic() < deadline, out.read_text(errors="replace")
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(20)
    text = out.read_bytes().decode()
    _clean(text)
    assert "[local] old ^[]52;c;SGVsbG8=^G" in text and "[local] new ^[[2J^[[1A" in text
