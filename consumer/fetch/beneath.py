"""Opens a file only if it lies beneath a directory: Linux's openat2(2) with RESOLVE_BENEATH.

The kernel resolves the path component by component and refuses, with
``EXDEV``, any ``..``, absolute symlink or symlink that would leave the
directory, crossing a mount point, or a /proc magic link: one system call
both confines and opens, so nothing can change between a check and the open.

Python's ``os`` module has no openat2, so it is called through libc's
``syscall``. Where it is missing (another system, an old kernel, a seccomp
filter that refuses it) ``BeneathOpener.probe`` returns None and callers use
their portable path.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Callable

# openat2's number is the same on every architecture that uses the unified table (Linux 5.6+).
_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "arm64": 437, "riscv64": 437, "ppc64le": 437, "s390x": 437}
_RESOLVE_NO_XDEV = 0x01
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
# O_NONBLOCK: opening a FIFO would otherwise block until a writer appears; O_NOCTTY: a
# terminal never becomes the process's controlling one. Regular files ignore both.
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class BeneathOpener:
    """Opens paths relative to a directory descriptor, never outside it or its mount."""

    def __init__(self, syscall: Callable[..., int], number: int) -> None:
        self._syscall = syscall
        self._number = number
        self._how = _OpenHow(_FLAGS, 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS | _RESOLVE_NO_XDEV)
        self._how_ref = ctypes.byref(self._how)
        self._how_size = ctypes.sizeof(self._how)

    @classmethod
    def probe(cls) -> BeneathOpener | None:
        """An opener, if this system runs openat2; None otherwise."""
        number = _SYS_OPENAT2.get(platform.machine()) if os.name == "posix" else None
        if number is None:
            return None
        try:
            syscall = ctypes.CDLL(None, use_errno=True).syscall
        except (OSError, AttributeError):
            return None
        syscall.restype = ctypes.c_long
        opener = cls(syscall, number)
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.close(opener.open(root, "."))
        except OSError:
            return None  # ENOSYS (old kernel) or EPERM (a seccomp filter): not available
        finally:
            os.close(root)
        return opener

    def open(self, directory_fd: int, relative: str) -> int:
        """A descriptor open for reading on ``relative`` beneath ``directory_fd``; raises OSError."""
        fd: int = self._syscall(
            self._number, directory_fd, os.fsencode(relative), self._how_ref, self._how_size
        )
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), relative)
        return fd
