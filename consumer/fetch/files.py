"""Reads file:// documents, confined to the configured roots whatever symlinks and ``..`` say.

On Linux 5.6+ a path is opened with openat2(2) beneath its root's directory
(``consumer.fetch.beneath``): one system call that cannot leave the root, the
common case. Whatever that refuses (an absolute symlink, a mount point, a
missing file) is decided again by the slower way below, which also words
the error.

Where the system allows it (Linux), the path is first opened with
``O_PATH``: the kernel resolves every symlink and ``..`` once, the file's
real location is read back from that descriptor, checked against the roots,
and only then is that very inode opened for reading. Nothing outside the
roots is ever opened for reading, not even a device node, and no rename or
symlink swap between the check and the read can change what is read.
Elsewhere the path is resolved with ``os.path.realpath`` first and opened
with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
import weakref
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

from consumer.fate.errors import (
    DocumentNotFound,
    DocumentTooLarge,
    PathOutsideAllowedRoots,
    UnsupportedUriScheme,
)
from consumer.fetch.beneath import BeneathOpener

# Small files are read inline; a thread hop costs more than the read itself.
_INLINE_READ_BYTES = 256 * 1024
_O_PATH: int | None = getattr(os, "O_PATH", None)
_PROC_FD = "/proc/self/fd/"
# O_NONBLOCK: opening a FIFO would otherwise block the event loop until a writer appears;
# regular files ignore the flag.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_BENEATH: BeneathOpener | None = BeneathOpener.probe()


def local_path(uri: str) -> str:
    """The decoded absolute path of a file:// URI."""
    # The common shape (file:///abs/path, nothing to decode) without the cost of urlsplit.
    if uri.startswith("file:///") and "%" not in uri and "?" not in uri and "#" not in uri:
        raw = uri[7:]
    else:
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedUriScheme(f"file:// URI names a remote host {parts.netloc!r}")
        raw = unquote(parts.path)
    if "\x00" in raw or not raw.startswith("/"):
        raise PathOutsideAllowedRoots("file:// path is not an absolute local path")
    return raw


class FileReader:
    """Reads local files inside ``roots``, at most ``max_bytes`` of each."""

    def __init__(self, roots: list[Path], max_bytes: int) -> None:
        # Strings ending in a separator: the per-record checks are prefix tests.
        self._real_roots = tuple(os.path.join(os.path.realpath(root), "") for root in roots)
        # A path may name a root the way it was configured (e.g. through a symlink) too.
        self._named_roots = self._real_roots + tuple(
            os.path.join(os.path.abspath(root), "") for root in roots
        )
        self._max_bytes = max_bytes
        self._by_descriptor = _O_PATH is not None and os.path.isdir(_PROC_FD)
        self._beneath = _BENEATH
        # Each root's directory, open for the reader's life, under every name the root has.
        self._root_fds: list[tuple[str, int]] = []
        if self._beneath is not None and _O_PATH is not None:
            for root in roots:
                try:
                    fd = os.open(root, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                except OSError:
                    continue  # a root missing now is left to the slower way
                names = {os.path.join(os.path.realpath(root), ""), os.path.join(os.path.abspath(root), "")}
                self._root_fds += [(name, fd) for name in names]
            weakref.finalize(self, _close_all, {fd for _, fd in self._root_fds})

    async def read(self, uri: str) -> bytes:
        raw = local_path(uri)
        if not self._real_roots:
            raise PathOutsideAllowedRoots("no allowed roots are configured (DOCMILL_ALLOWED_ROOTS)")
        # Lexically outside every root ("..", other folders): refused before anything is opened.
        if not os.path.normpath(raw).startswith(self._named_roots):  # noqa: ASYNC240 - string work, no I/O
            raise PathOutsideAllowedRoots(f"{raw} is outside the allowed roots")
        opened = self._open_beneath(raw) if self._root_fds else None
        if opened is None:
            opened = self._open_by_descriptor(raw) if self._by_descriptor else self._open_resolved(raw)
        fd, size = opened
        try:
            if size > self._max_bytes:
                raise DocumentTooLarge(f"{raw} is {size} bytes; the limit is {self._max_bytes}")
            if size <= _INLINE_READ_BYTES:
                return _read_all(fd, size, self._max_bytes, raw)
            return await asyncio.to_thread(_read_all, fd, size, self._max_bytes, raw)
        finally:
            os.close(fd)

    # --- opening: each returns a descriptor open for reading and the file's size -------

    def _open_beneath(self, raw: str) -> tuple[int, int] | None:
        """Opened beneath the root it names, or None: then the slower ways decide (and word why)."""
        assert self._beneath is not None
        for name, root_fd in self._root_fds:
            if raw.startswith(name):
                try:
                    fd = self._beneath.open(root_fd, raw[len(name) :])
                except OSError:
                    return None
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode):
                    return fd, info.st_size
                os.close(fd)
                raise DocumentNotFound(f"{raw} is not a regular file")
        return None

    def _open_by_descriptor(self, raw: str) -> tuple[int, int]:
        assert _O_PATH is not None
        try:
            located = os.open(raw, _O_PATH | os.O_CLOEXEC)
        except OSError as error:
            self._refuse_unopenable(raw, error)
        try:
            real = os.readlink(f"{_PROC_FD}{located}")
            if not real.startswith(self._real_roots):
                raise PathOutsideAllowedRoots(f"{raw} is outside the allowed roots")
            info = os.fstat(located)
            if not stat.S_ISREG(info.st_mode):
                raise DocumentNotFound(f"{raw} is not a regular file")
            # Reopening the descriptor's own /proc entry opens exactly the inode checked above.
            try:
                return os.open(f"{_PROC_FD}{located}", _READ_FLAGS), info.st_size
            except OSError as error:
                raise DocumentNotFound(f"{raw} cannot be opened: {error.strerror}") from None
        finally:
            os.close(located)

    def _open_resolved(self, raw: str) -> tuple[int, int]:
        path = self._resolved_inside(raw)
        try:
            # O_NOFOLLOW: a symlink swapped in after the check is refused, not followed.
            fd = os.open(path, _READ_FLAGS | os.O_NOFOLLOW)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise PathOutsideAllowedRoots(f"{path} became a symlink") from None
            self._refuse_unopenable(raw, error)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise DocumentNotFound(f"{path} is not a regular file")
        return fd, info.st_size

    def _resolved_inside(self, raw: str) -> str:
        # realpath follows every symlink and removes "..", so the check sees the file
        # that would really be opened.
        try:
            resolved = os.path.realpath(raw, strict=False)
        except (RuntimeError, OSError) as error:
            raise DocumentNotFound(f"{raw} cannot be resolved: {error}") from None
        if not resolved.startswith(self._real_roots):
            raise PathOutsideAllowedRoots(f"{raw} is outside the allowed roots")
        return resolved

    def _refuse_unopenable(self, raw: str, error: OSError) -> NoReturn:
        """Says why a path cannot be opened, never revealing whether a file outside the roots exists."""
        self._resolved_inside(raw)  # raises PathOutsideAllowedRoots when it would lead outside
        if isinstance(error, FileNotFoundError):
            raise DocumentNotFound(f"{raw} does not exist") from None
        raise DocumentNotFound(f"{raw} cannot be opened: {error.strerror}") from None


def _close_all(fds: set[int]) -> None:
    for fd in fds:
        os.close(fd)


def _read_all(fd: int, size: int, limit: int, raw: str) -> bytes:
    """The whole file: ``size`` bytes as seen when opened, or more, up to ``limit``, if it grew."""
    # One byte more than the size seen: a file that grew since is noticed.
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data  # the common case: all of it, and nothing more
    # A short read, or a file that grew while it was read: on to its end, within the limit.
    chunks, total = [data], len(data)
    while total <= limit:
        more = os.read(fd, limit + 1 - total)
        if not more:
            break
        chunks.append(more)
        total += len(more)
    if total > limit:
        raise DocumentTooLarge(f"{raw} grew past the limit of {limit} bytes while read")
    return b"".join(chunks)
