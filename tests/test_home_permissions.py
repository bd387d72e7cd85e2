"""A home is private to its owner by default (0700 directories, 0600 files), group-readable
when ``<home>/home.json`` says ``{"shared": true}``, and an older, looser home is tightened
when it is opened. Every process runs with the umask a careless shell would give it (022)."""

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import labdeck_env

LOOSE_UMASK = 0o022
# the job writes a checkpoint and a file of its own into its run directory, the way an
# adapter or a user's script would
WRITER = ("mkdir -p $LABDECK_HOME/runs/$LABDECK_RUN_ID/checkpoints"
          " && echo x > $LABDECK_HOME/runs/$LABDECK_RUN_ID/checkpoints/last.pt"
          " && echo y > $LABDECK_HOME/runs/$LABDECK_RUN_ID/out.txt")


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "cli", *args], env=labdeck_env(home),
                         capture_output=True, text=True, timeout=120, umask=LOOSE_UMASK)
    assert res.returncode == 0, (args, res.stdout, res.stderr)
    return res


def modes(home: Path) -> dict[str, int]:
    """Permission bits of the home and of everything under it, by path relative to it."""
    out = {".": stat.S_IMODE(home.stat().st_mode)}
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            path = Path(root) / name
            out[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def loose(found: dict[str, int], allowed: int) -> dict[str, str]:
    return {p: oct(m) for p, m in found.items() if m & ~allowed & 0o077}


def job_home(home: Path) -> dict[str, int]:
    cli(home, "exp", "create", "w", "--adapter", "script", "--set", "command=" + WRITER)
    cli(home, "run", "start", "w", "--wait")
    found = modes(home)
    # what the test means to look at is there: db, run dir, job log, checkpoint, a file
    assert {"labdeck.db", "runs", "runs/1", "runs/1/job-1.log", "runs/1/checkpoints/last.pt",
            "runs/1/out.txt"} <= set(found)
    return found


def wal_modes(home: Path) -> tuple[int, int]:
    """The modes of the WAL and shared-memory files a connection opened now creates (the last
    labdeck process to close the database removed them)."""
    old = os.umask(LOOSE_UMASK)
    conn = sqlite3.connect(str(home / "labdeck.db"))
    try:
        conn.execute("SELECT COUNT(*) FROM runs").fetchone()
        return tuple(stat.S_IMODE((home / f"labdeck.db-{x}").stat().st_mode)
                     for x in ("wal", "shm"))
    finally:
        conn.close()
        os.umask(old)


def test_cli_home_and_job_files_are_private(home: Path) -> None:
    found = job_home(home)
    assert loose(found, 0) == {}
    assert found["."] == 0o700 and found["runs/1"] == 0o700
    assert found["labdeck.db"] == 0o600 and found["runs/1/checkpoints/last.pt"] == 0o600
    assert wal_modes(home) == (0o600, 0o600)


def test_tracking_api_home_is_private(tmp_path: Path) -> None:
    home = tmp_path / "tracked"
    code = textwrap.dedent(f"""
        import os
        from engine import tracking
        run = tracking.init(experiment="mine", home={str(home)!r})
        for i in range(20):
            tracking.log({{"loss": 1.0 / (i + 1)}}, step=i)
        tracking.finish()
        print(oct(os.umask(0o022)))
    """)
    res = subprocess.run([sys.executable, "-c", code], env=labdeck_env(home),
                         capture_output=True, text=True, timeout=60, umask=LOOSE_UMASK)
    assert res.returncode == 0, res.stderr
    # the user's own process keeps its umask: only the home's files are private
    assert res.stdout.strip() == oct(LOOSE_UMASK)
    found = modes(home)
    assert {"labdeck.db", "runs", "runs/1"} <= set(found)
    assert loose(found, 0) == {}


def test_old_world_readable_home_is_tightened_once_on_open(home: Path) -> None:
    job_home(home)
    for path in [home, *home.rglob("*")]:  # what an old labdeck left with umask 022
        path.chmod(0o755 if path.is_dir() else 0o644)
    res = cli(home, "exp", "list")
    assert res.stderr == f"labdeck: tightened permissions of {home} (was world-readable)\n"
    assert loose(modes(home), 0) == {}
    assert cli(home, "exp", "list").stderr == ""  # once


def test_shared_home_is_group_readable(home: Path) -> None:
    home.mkdir()
    (home / "home.json").write_text(json.dumps({"shared": True}))
    found = job_home(home)
    assert loose(found, 0o050) == {}  # nothing for the world, no group write
    assert found["."] == 0o750 and found["runs/1"] == 0o750
    assert found["labdeck.db"] == 0o640 and wal_modes(home) == (0o640, 0o640)
    assert found["runs/1/checkpoints/last.pt"] == 0o640
    for path in [home, *home.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    res = cli(home, "exp", "list")
    assert res.stderr == f"labdeck: tightened permissions of {home} (was world-readable)\n"
    found = modes(home)
    assert loose(found, 0o050) == {} and found["."] == 0o750
    assert found["labdeck.db"] == 0o640


def test_bad_home_json_is_an_error_not_a_private_home(home: Path) -> None:
    home.mkdir()
    home.chmod(0o750)  # not mkdir(mode=): an in-process engine test may have left umask 077
    (home / "home.json").write_text("{shared: yes")
    res = subprocess.run([sys.executable, "-m", "cli", "exp", "list"],
                         env=labdeck_env(home), capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "home.json" in res.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o750  # left alone
