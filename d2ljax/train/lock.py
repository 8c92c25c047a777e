"""One run per workdir: ``WORKDIR/.lock``, held while a run writes there.

The lock file names its holder (pid, host, start time, command) as JSON. It appears at once,
complete and already locked: it is written under a temporary name, locked with ``flock`` and
linked into place (``link`` fails if the name exists, like ``O_CREAT | O_EXCL``). A second run
finds it and is refused with :class:`WorkdirLocked`, which names the holder.

A holder that died without releasing it (``kill -9``, a crash) leaves a stale lock: the kernel
drops a dead process's ``flock``, so on the same host a lock file nobody holds locked is stale,
is reported in one line and is taken over. A lock held from another host cannot be checked
from here: it is refused, and the message says to delete the file if that run is gone. Where
the filesystem has no ``flock``, a lock from this host is stale when its pid is not running.

The lock is re-entrant within a process (``experiment.run`` may hold it around ``fit``, which
takes it too) and is released on exit, exceptions included.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: pid checks only
    fcntl = None

#: The lock file's name in a workdir.
LOCK_NAME = ".lock"

# Locks this process holds: resolved path -> [fd, depth].
_HELD: dict[Path, list] = {}


class WorkdirLocked(FileExistsError):
    """Another run holds the workdir's lock; ``holder`` is what its lock file says.

    (A ``FileExistsError``: the command line prints it as ``d2ljax: error: ...``.)"""

    def __init__(self, message: str, holder: dict | None = None):
        super().__init__(message)
        self.holder = holder or {}


def describe(holder: dict) -> str:
    """``pid 123 on host box since 2025-01-01 12:00:00, command: d2ljax train mlp``."""
    if not holder:
        return "a holder that wrote no details"
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
    if holder.get("started"):
        text += f" since {holder['started']}"
    if holder.get("command"):
        text += f", command: {holder['command']}"
    return text


def _me() -> dict:
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command[:200],
    }


def _read(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 1 << 16).decode() or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(fd: int, info: dict) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(info) + "\n").encode())
    os.fsync(fd)


def _flock(fd: int) -> bool | None:
    """Lock ``fd`` without waiting: True if taken, False if someone holds it, None if this
    filesystem cannot ``flock``."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:
        return None


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True  # someone else's process, or a pid we cannot read: assume it runs
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class WorkdirLock:
    """The lock of ``workdir`` (which must exist): :meth:`acquire` takes it or raises
    :class:`WorkdirLocked`; :meth:`release` gives it back. Also a context manager.

    ``log`` gets the one line reporting a stale lock taken over."""

    def __init__(self, workdir: str | os.PathLike, log: Callable[[str], None] | None = None):
        self.workdir = Path(workdir)
        self.path = (self.workdir / LOCK_NAME).absolute()
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._key = self.path.resolve()
        self._depth = 0

    def acquire(self) -> WorkdirLock:
        held = _HELD.get(self._key)
        if held is not None:
            held[1] += 1
            self._depth += 1
            return self
        for _ in range(10):  # each retry follows a holder that released at the same moment
            fd = self._create() or self._take_over()
            if fd is not None:
                _HELD[self._key] = [fd, 1]
                self._depth += 1
                return self
        raise WorkdirLocked(f"could not take the lock {self.path}: it keeps changing")

    def release(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        held = _HELD[self._key]
        held[1] -= 1
        if held[1] == 0:
            del _HELD[self._key]
            fd = held[0]
            if _same_file(fd, self.path):
                self.path.unlink()  # before closing: a waiter that then locks the old file
            os.close(fd)  # finds it is no longer the lock (see _take_over) and starts again

    def _create(self) -> int | None:
        """The new lock's fd, or None when a lock file exists already."""
        tmp = self.path.with_name(f"{LOCK_NAME}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _flock(fd)
            _write(fd, _me())
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                os.close(fd)
                return None
            except OSError:  # no hard links here: exclusive create, then write
                os.close(fd)
                return self._create_exclusive()
            return fd
        finally:
            tmp.unlink(missing_ok=True)

    def _create_exclusive(self) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return None
        _flock(fd)
        _write(fd, _me())
        return fd

    def _take_over(self) -> int | None:
        """The existing lock's fd if its holder is gone (a stale lock), else raise
        :class:`WorkdirLocked`; None to start again (it was released meanwhile)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return None
        taken = _flock(fd)
        holder = _read(fd)
        if taken and not _same_file(fd, self.path):
            os.close(fd)
            return None
        here = holder.get("host") == socket.gethostname()
        if taken is None:
            stale = here and not _alive(holder.get("pid"))
        else:
            stale = taken and (here or not holder)
        if not stale:
            os.close(fd)
            if here or not holder:
                hint = "wait for it to finish, or use another workdir"
            else:
                hint = (
                    "wait for it to finish or use another workdir; if that run is gone, "
                    f"delete {self.path}"
                )
            raise WorkdirLocked(
                f"{self.workdir} is in use by another run: {describe(holder)}; {hint}", holder
            )
        self.log(
            f"{self.workdir}: taking over a stale lock (the run that held it is gone: "
            f"{describe(holder)})"
        )
        _write(fd, _me())
        return fd

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_workdir(
    workdir: str | os.PathLike, log: Callable[[str], None] | None = None
) -> WorkdirLock:
    """Take the lock of ``workdir`` (created if missing); see :class:`WorkdirLock`."""
    Path(workdir).mkdir(parents=True, exist_ok=True)
    return WorkdirLock(workdir, log).acquire()
