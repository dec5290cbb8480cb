"""Reading user text files in whatever encoding they came in, and writing files atomically.

Captions and configs arrive as UTF-8, UTF-8 with BOM, UTF-16 (Windows Notepad) or GBK (Chinese Windows).
Every reader in Danlu goes through `read_text` so none of them crashes on a non-UTF-8 file.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(data: bytes) -> str:
    """Best guess of the encoding of `data`: BOM first, then strict UTF-8, then GB18030 (a GBK superset)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    # Before UTF-8: ASCII text in UTF-16-LE is also valid UTF-8 (full of NULs).
    if _looks_like_utf16_without_bom(data):
        return "utf-16-le"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes  # only for the rare file that is none of the above

    best = from_bytes(data).best()
    return best.encoding if best is not None else "latin-1"


def _looks_like_utf16_without_bom(data: bytes) -> bool:
    # ASCII text in UTF-16-LE has a zero in every odd byte.
    if len(data) < 4 or len(data) % 2:
        return False
    odd = data[1::2]
    return odd.count(0) >= len(odd) * 0.6


def decode(data: bytes) -> tuple[str, str]:
    """Decode bytes to (text, encoding). Never raises for odd encodings."""
    encoding = detect_encoding(data)
    return data.decode(encoding, errors="replace"), encoding


def read_text(path: str | os.PathLike, *, follow_symlinks: bool = True) -> tuple[str, str]:
    """Read a text file as (text, encoding name). A BOM is removed from the text.

    Only regular files are read (OSError for a FIFO, device or socket, which would block or never end).
    `follow_symlinks=False` (captions) also refuses a symbolic link: a dataset's caption that points
    elsewhere could show another file's text in the page, or be written through."""
    return decode(read_regular_bytes(path, follow_symlinks=follow_symlinks))


def read_regular_bytes(path: str | os.PathLike, *, follow_symlinks: bool = True) -> bytes:
    with open_regular(path, follow_symlinks=follow_symlinks) as fh:
        return fh.read()


def open_regular(path: str | os.PathLike, *, follow_symlinks: bool = True) -> BinaryIO:
    """`path` opened for binary reading; OSError (at once, never blocking) unless it is a regular file.
    Images go through here too: Image.open(open_regular(p)) cannot hang on a FIFO named like a picture."""
    # O_NONBLOCK: opening a FIFO without a writer returns at once (instead of waiting), so fstat can refuse it.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)  # (Windows has no FIFOs)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow_symlinks and os.path.islink(path):
            raise OSError(errno.ELOOP, f"{path} is a symbolic link; only regular files are read here") from None
        raise exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file (a FIFO, device or socket); skipped")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def plain_name(text: str, fill: str = "_") -> str:
    """`text` as one plain file or folder name: each run of characters other than letters, digits, '_', '.' and '-'
    becomes `fill`, and dots, dashes and underscores at either end go ('' when nothing is left)."""
    return re.sub(r"[^\w.-]+", fill, text.strip()).strip("._-")


def inside(folder: str | os.PathLike, name: str | os.PathLike) -> Path:
    """`folder / name`, refused (ValueError) unless it resolves inside `folder`: a name such as
    "../../x" or an absolute path, or a symlink pointing out, never makes a writer leave its folder."""
    root = Path(folder).resolve()
    target = (root / name).resolve()
    if target == root or root not in target.parents:
        raise ValueError(f"'{name}' would be written outside {root}; use a plain file name / "
                         f"'{name}' 会写到 {root} 之外；请使用单纯的文件名")
    return target


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` so that `path` holds either its old content or the new one, never a torn file."""
    atomic_write_via(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_via(path: str | os.PathLike, write_to) -> None:
    """Let `write_to(tmp_path)` write a temp file beside `path`, then swap it in (fsync + os.replace): `path`
    holds its old content or the new one, never a torn file. A writer that takes a path (safetensors'
    save_file) never holds a multi-GB file in memory whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        os.close(fd)
        # mkstemp makes 0600 files: keep the replaced file's mode, or give a new one what open() would.
        os.chmod(tmp, _mode_for(path))
        write_to(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def is_write_leftover(name: str) -> bool:
    """A temp file of atomic_write_bytes (".<name>.<random>.tmp") left by a kill mid-write."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Linux shows it without changing it; os.umask() must set one to read it (process-wide, so only as fallback).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))
