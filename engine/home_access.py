"""Who may read a home. On a shared GPU server a home holds other people's configs, logs and
weights, so it is private to its owner by default (0700 directories, 0600 files, like ~/.ssh);
``<home>/home.json`` containing ``{"shared": true}`` makes it readable by its group (0750 /
0640) for a team home. Labdeck's own processes run with the matching umask, so whatever they
and the commands they start write is covered; an older, looser home is tightened once, on open.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

HOME_CONFIG = "home.json"


@dataclass(frozen=True)
class Access:
    dir_mode: int
    file_mode: int
    umask: int
    # bits a directory / file must not have, and (shared) the group bits it must have
    strip: int
    dir_add: int = 0
    file_add: int = 0


PRIVATE = Access(dir_mode=0o700, file_mode=0o600, umask=0o077, strip=0o077)
SHARED = Access(dir_mode=0o750, file_mode=0o640, umask=0o027, strip=0o027,
                dir_add=0o050, file_add=0o040)


def read_shared(home: Path) -> bool:
    """Whether ``home.json`` in ``home`` opts into a group-readable home. A file that cannot
    be read is an error: guessing "private" would lock a team out of its shared home."""
    path = home / HOME_CONFIG
    try:
        text = path.read_text()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("shared", False), bool):
        raise ValueError(f'{path}: expected an object like {{"shared": true}}')
    return bool(data.get("shared", False))


def _wanted(mode: int, is_dir: bool, access: Access) -> int:
    perm = stat.S_IMODE(mode)
    return (perm & ~access.strip) | (access.dir_add if is_dir else access.file_add)


def _fix(path: Path, access: Access) -> int | None:
    """chmod one entry we own to ``access``; returns the old bits when they were looser."""
    try:
        st = path.lstat()
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
        return None  # never follow a link out of the home; never touch another user's file
    want = _wanted(st.st_mode, stat.S_ISDIR(st.st_mode), access)
    if want == stat.S_IMODE(st.st_mode):
        return None
    try:
        os.chmod(path, want)
    except OSError:
        return None
    loosened = stat.S_IMODE(st.st_mode) & access.strip
    return loosened or None


def _tighten_tree(home: Path, access: Access) -> int:
    """Walk the home, fixing every entry; the home itself last, so an interrupted walk is
    redone on the next open. Returns the union of the too-loose bits found."""
    found = 0
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            found |= _fix(Path(root) / name, access) or 0
    return found | (_fix(home, access) or 0)


def make_dir(path: Path, access: Access) -> None:
    """``mkdir`` (parent must exist) with exactly the home's directory mode, whatever the
    umask of the process (the tracking API runs in a user's own script)."""
    try:
        path.mkdir(mode=access.dir_mode)
    except FileExistsError:
        return
    os.chmod(path, access.dir_mode)


def secure_home(home: Path, access: Access, db_path: Path) -> None:
    """Create the home with the right mode, or tighten an existing one that is looser, and
    create the database file with it (SQLite gives the WAL and shared-memory files the
    database file's mode). Prints one notice on stderr when it tightened anything."""
    home.parent.mkdir(parents=True, exist_ok=True)
    found = 0
    st = home.stat() if home.exists() else None
    if st is None:
        make_dir(home, access)
    elif st.st_uid == os.geteuid() and _wanted(st.st_mode, True, access) != stat.S_IMODE(
            st.st_mode):
        # a directory that is not yet a labdeck home (no database, no home.json) may hold
        # anything: then only the directory itself changes, never what it already holds
        ours = db_path.exists() or (home / HOME_CONFIG).exists()
        found = _tighten_tree(home, access) if ours else (_fix(home, access) or 0)
    for suffix in ("", "-wal", "-shm"):  # cheap enough to check on every open
        found |= _fix(Path(f"{db_path}{suffix}"), access) or 0
    if found:
        what = "world-readable" if found & 0o007 else "group-accessible"
        print(f"labdeck: tightened permissions of {home} (was {what})", file=sys.stderr,
              flush=True)
    try:
        fd = os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, access.file_mode)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, access.file_mode)
    finally:
        os.close(fd)
