"""Reading the content folder without trusting it.

A CMS export (or a repository of content) can hold anything: a symlink to `/etc/passwd` or
`/dev/zero`, a FIFO that blocks the first reader forever, a 10 GB file. Only regular files
whose real location is inside the content folder are read, at most `max_bytes` each; a
FIFO or device is refused without being opened for a blocking read (`O_NONBLOCK`, then
`fstat` on what was actually opened).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from content_variants.errors import ContentError


def inside(root: Path, path: Path) -> bool:
    """Whether `path`'s real location (symlinks resolved) is inside `root`'s."""
    try:
        return path.resolve(strict=True).is_relative_to(root.resolve(strict=True))
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return False


def is_folder(root: Path, path: Path) -> bool:
    """A directory (not a symlink leaving `root`)."""
    return inside(root, path) and path.is_dir()


def read_text(root: Path, path: Path, max_bytes: int) -> str:
    """The UTF-8 text of a regular file inside `root`, at most `max_bytes`, or ContentError."""
    if not inside(root, path):
        raise ContentError(path, "not read: a link that leads outside the content folder "
                                 "(or to nothing)")
    try:
        fd = os.open(path.resolve(), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ContentError(path, "not read: the file changed into a link") from e
        raise ContentError(path, f"cannot read file: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ContentError(path, "not read: not a regular file (a FIFO, device or socket)")
        if info.st_size > max_bytes:
            raise ContentError(path, f"file is larger than {max_bytes} bytes")
        data = _read_at_most(fd, max_bytes + 1)
    except OSError as e:
        raise ContentError(path, f"cannot read file: {e.strerror}") from e
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew after fstat
        raise ContentError(path, f"file is larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ContentError(path, "file is not UTF-8 text") from e


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(65_536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
