"""openat2 beneath a directory: the fast way file:// documents are confined on Linux."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from consumer.fetch.beneath import BeneathOpener


def _linux_at_least(major: int, minor: int) -> bool:
    release = os.uname().release.split("-")[0].split(".")
    return os.path.isdir("/proc/self/fd") and tuple(int(part) for part in release[:2]) >= (major, minor)


def test_openat2_is_available_on_linux_5_6_and_later() -> None:
    """So that the file tests' 'beneath' runs really take the fast way here."""
    if not _linux_at_least(5, 6):
        pytest.skip("not Linux 5.6+")
    assert BeneathOpener.probe() is not None


def test_opens_inside_and_refuses_every_way_out(tmp_path: Path) -> None:
    opener = BeneathOpener.probe()
    if opener is None:
        pytest.skip("this system has no openat2")
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "nested.txt").write_bytes(b"nested")
    secret = outside / "secret.txt"
    secret.write_bytes(b"top secret")
    (root / "absolute-link").symlink_to(secret)
    (root / "relative-link").symlink_to("../outside/secret.txt")
    (root / "inner-link").symlink_to("sub/nested.txt")
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for inside in ("sub/nested.txt", "inner-link", "sub/../sub/nested.txt"):
            fd = opener.open(root_fd, inside)
            try:
                assert os.read(fd, 100) == b"nested"
            finally:
                os.close(fd)
        escapes = ("../outside/secret.txt", "absolute-link", "relative-link", str(secret), "/proc/self/fd/0")
        for escape in escapes:
            # EXDEV: the kernel's own word for "that would leave the directory"
            with pytest.raises(OSError, match=os.strerror(errno.EXDEV)):
                os.close(opener.open(root_fd, escape))
    finally:
        os.close(root_fd)
