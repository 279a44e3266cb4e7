"""File operations for root that never follow a symbolic link another user could have planted.

A root process that writes, chmods or chowns through a path inside a directory an unprivileged user controls can be
made to overwrite or hand over any file (`ln -s /etc/shadow run/launch.env.tmp`). These helpers open with
O_NOFOLLOW, create with O_EXCL, replace by rename and chown with lchown semantics.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from appliance.errors import UnsafePathError

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def replace_file(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Replace `path` by a new file holding `data` (str as UTF-8) with exactly `mode`, atomically and durably; a
    symlink at either name is replaced, not followed."""
    partial = _new_partial_file(path, data, mode)
    os.replace(partial, path)  # rename(2) replaces a link at `path`; it does not write through it


def create_file_nofollow(path: Path, text: str, mode: int = 0o600) -> bool:
    """Create `path` holding `text` unless something is at that name (a link there is not followed); False when it
    was, e.g. another process created it first: the replicas of every role start on one volume at once."""
    partial = _new_partial_file(path, text, mode)
    try:
        os.link(partial, path)  # link(2) fails on an existing name, a symlink included
    except FileExistsError:
        return False
    finally:
        os.unlink(partial)
    return True


def _new_partial_file(path: Path, data: str | bytes, mode: int) -> Path:
    """A new file beside `path` holding `data`, on disk, named for this process: processes writing `path` at once
    (two roles on one volume) each have their own."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)  # removes a planted link itself, never its target
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except FileExistsError:
        raise UnsafePathError(
            f"{partial} was created again while the appliance wrote it: another user writes into {path.parent}; "
            "make that directory writable by the appliance's user only"
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, mode)  # the mode asked for, not what the umask left of it: other users may need to read it
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())  # a crash after the rename must not leave an empty file under the name
    except OSError:
        os.unlink(partial)  # a full disk: no half-written file is left for every failed start
        raise
    return partial


@contextlib.contextmanager
def open_dir_nofollow(path: Path) -> Iterator[int]:
    """An fd on the directory `path` itself, refusing a symlink in its last component."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafePathError(
                f"{path} is a symbolic link; the appliance needs a real directory there. Remove the link"
            ) from None
        raise UnsafePathError(f"cannot open the directory {path}: {exc.strerror}") from exc
    try:
        yield fd
    finally:
        os.close(fd)


def chown_tree(path: Path, uid: int, gid: int) -> int:
    """lchown `path` and everything below it without following any link; returns how many entries changed."""
    changed = 0
    with open_dir_nofollow(path) as top:
        if _owner(os.fstat(top)) != (uid, gid):
            os.fchown(top, uid, gid)
            changed += 1
    for _root, dirs, files, root_fd in os.fwalk(path, follow_symlinks=False):
        for name in (*dirs, *files):
            if _owner(os.stat(name, dir_fd=root_fd, follow_symlinks=False)) != (uid, gid):
                os.chown(name, uid, gid, dir_fd=root_fd, follow_symlinks=False)
                changed += 1
    return changed


def own_dir(path: Path, uid: int, gid: int, mode: int = 0o700) -> bool:
    """Create `path` (mode, owner uid:gid); an existing one owned by another uid is chowned with all it holds.

    Returns True when the ownership was repaired (a data dir made by an image whose user had another uid).
    """
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    with open_dir_nofollow(path) as fd:
        os.fchmod(fd, mode)
        owner = _owner(os.fstat(fd))
        if owner == (uid, gid):
            return False
        if not os.listdir(fd):  # just made by this process: nothing inside to repair
            os.fchown(fd, uid, gid)
            return False
    log.warning("%s belongs to %d:%d, not %d:%d; changing the owner of everything in it", path, *owner, uid, gid)
    changed = chown_tree(path, uid, gid)
    log.info("changed the owner of %d entries under %s to %d:%d", changed, path, uid, gid)
    return True


def take_private_dir(path: Path) -> None:
    """`path` as a 0700 directory of this process's user; one another user owned is emptied once taken back.

    run/ of older versions belonged to the PostgreSQL user: anything left in it may be a link laid as a trap.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open_dir_nofollow(path) as fd:
        uid, gid = os.geteuid(), os.getegid()
        foreign = _owner(os.fstat(fd))[0] != uid
        try:
            # owner and mode first: from then on the other user cannot add anything while we empty it
            os.fchown(fd, uid, gid)
            os.fchmod(fd, 0o700)
        except PermissionError:
            raise UnsafePathError(
                f"{path} belongs to uid {_owner(os.fstat(fd))[0]}, and this user (uid {uid}) cannot take it back; "
                "remove it, or start the appliance as root once"
            ) from None
        if foreign:
            log.warning("%s belonged to another user; removing what it left there", path)
            for name in os.listdir(fd):
                _remove_entry(fd, name)


def _remove_entry(dir_fd: int, name: str) -> None:
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based on Linux: safe against links swapped in while it runs
    else:
        os.unlink(name, dir_fd=dir_fd)


def _owner(info: os.stat_result) -> tuple[int, int]:
    return info.st_uid, info.st_gid


def restrict_mode(path: Path, allowed: int) -> None:
    """Take every permission bit outside `allowed` away from `path`, never through a symlink; warn when we may not
    (a read-only mount, another owner) instead of stopping the start."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        log.warning("cannot check the permissions of %s: %s; make it readable by this user only", path, exc.strerror)
        return
    try:
        current = stat.S_IMODE(os.fstat(fd).st_mode)
        if current & ~allowed:
            os.fchmod(fd, current & allowed)
            log.info("restricted the permissions of %s from %04o to %04o", path, current, current & allowed)
    except OSError as exc:
        log.warning("cannot restrict the permissions of %s: %s; make it readable by this user only", path, exc.strerror)
    finally:
        os.close(fd)
