"""Atomic writes: a reader sees the old file or the new one, never half of one.

Single files are written to a temporary sibling, flushed and fsync'ed, then renamed over the target.
A run's output folder is built under a temporary name and swapped in as a whole.

Durability of a folder
----------------------
Files inside the staging folder of :func:`atomic_folder` need no fsync of their own (write them with
:func:`write_bytes_staged`, or link them with :func:`link_or_copy`): nobody sees the folder until it is swapped
in, and the swap makes them durable all at once. Before the rename :func:`atomic_folder` flushes the
filesystem the folder is on with one ``syncfs(2)`` (Linux; elsewhere ``sync(2)``): every file's data and
every folder entry below the staging folder is on disk before the new folder can appear, in one call instead
of one journal commit per file (30,000 fsyncs took ~30 s; one syncfs of the same files well under a second).
After the rename the parent folder is fsync'ed, so the swap itself survives a crash. ``syncfs`` also flushes
whatever else is dirty on that filesystem, so a cycle's swap waits for other writers there too: keep the
output folder off a filesystem that a busy database writes to. A crash before the swap leaves the old folder
intact and a ``.<name>.*.partial`` folder beside it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (same-folder temp file + fsync + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_staged(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` plainly (no temp file, no fsync), for files inside :func:`atomic_folder`.

    Only for a folder nobody reads yet: the folder swap makes the file visible and durable. The parent folder
    is made only when missing (a ``mkdir`` per file costs more than the write: thousands of CAP files a cycle).
    """
    try:
        handle = open(path, "wb")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "wb")
    with handle:
        handle.write(data)


# A hard link cannot be made (another filesystem, links not supported or too many): copy instead.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


def file_stat(path: Path) -> list[int] | None:
    """[inode, size, modification time in ns] of a file (``None`` if it is gone): how a manifest knows its file.

    As git checks its working tree: a file edited or replaced since it was listed has another stat.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def link_or_copy(source: Path, target: Path) -> bool:
    """Make ``target`` the file ``source`` (a hard link, or a copy where linking fails); False if it is gone.

    A published file that never changes is linked into the next snapshot instead of read and written again;
    both names then share one inode, so neither may ever be modified in place (ews replaces, never edits).
    ``source`` missing returns False and creates nothing. An existing ``target`` is an error
    (:class:`FileExistsError`), as is any other failure.
    """
    try:
        os.link(source, target)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        try:
            shutil.copyfile(source, target)
        except FileNotFoundError:
            return False
    return True


def _syncfs(folder: Path) -> None:
    """Flush the filesystem holding ``folder`` (all its dirty data and metadata) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        syncfs = getattr(_libc(), "syncfs", None)
        if syncfs is None:  # not Linux: sync(2) flushes every filesystem
            os.sync()
        elif syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs of {folder} failed: {os.strerror(code)}")
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``final``, durably, only if the block succeeds.

    On an exception the temporary folder is removed and ``final`` is untouched. Otherwise the filesystem is
    flushed once (see the module docstring: files in the folder need no fsync of their own), an existing
    ``final`` is moved aside, the new folder renamed into place, the parent folder fsync'ed, and the old
    folder deleted.
    """
    final = final.resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield staging
        _syncfs(staging)  # a folder that cannot be made durable is not swapped in
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(staging, final)
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
