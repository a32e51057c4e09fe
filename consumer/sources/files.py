"""Reading images from local folders: file:// references under configured roots only.

The path is resolved (symlinks followed) before the check, so a symlink inside a
root that points out of it is refused like the outside path itself; the file is
then opened without following a symlink at its last component, so one swapped in
after the check is refused too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from consumer.errors import ImageTooLarge, SourceNotFound, UnsupportedReference


def local_path(ref: str, allowed_roots: tuple[Path, ...]) -> Path:
    """The real path of a file:// reference, checked to lie inside an allowed root.

    Raises UnsupportedReference.
    """
    parts = urlsplit(ref)
    if parts.netloc not in ("", "localhost"):
        raise UnsupportedReference(f"file:// references must be local, not on host {parts.netloc!r}")
    path = Path(unquote(parts.path))
    if not path.is_absolute():
        raise UnsupportedReference("file:// references must hold an absolute path")
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in allowed_roots):
        roots = ", ".join(str(r) for r in allowed_roots) or "none configured (FACEGUARD_ALLOWED_ROOTS)"
        raise UnsupportedReference(f"{path} is outside the allowed roots: {roots}")
    return real


def read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, at most `max_bytes`. Raises SourceNotFound or ImageTooLarge."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore it.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise SourceNotFound(f"{path} does not exist") from exc
    except PermissionError as exc:
        raise SourceNotFound(f"{path} is not readable by the worker") from exc
    except OSError as exc:  # ELOOP: a symlink was swapped in after the check
        raise SourceNotFound(f"{path} cannot be opened: {exc.strerror}") from exc
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise SourceNotFound(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as file:
        size = status.st_size
        if size > max_bytes:
            raise ImageTooLarge(f"{path} has {size} bytes, more than the limit of {max_bytes}")
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{path} grew past the limit of {max_bytes} bytes while being read")
    return data
