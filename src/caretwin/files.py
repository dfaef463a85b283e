"""Folders written aside and renamed into place, so a failure leaves nothing half-written; cells made safe
for spreadsheets; compressed sources that expand past reason refused before they are read."""

from __future__ import annotations

import gzip
import os
import shutil
import zlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from caretwin.errors import CaretwinError


@contextmanager
def new_folder(target: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of `target` to fill; on success it becomes `target` (an empty one is replaced)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (mode 0600 from the start), written aside and renamed."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet will not run: text starting like a formula (=, +, -, @, tab, carriage
    return) gets a leading apostrophe, as OWASP advises against CSV injection; numbers and other values pass."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


MAX_RATIO = 200  # decompressed over compressed size; real extracts compress 5-20 fold, a decompression bomb 1000
FREE_BYTES = 256 << 20  # any file may expand to this much whatever its ratio


def check_expansion(path: Path, max_ratio: float = MAX_RATIO) -> None:
    """Refuse a gzip file that expands to more than `max_ratio` times its size (past FREE_BYTES), found by
    streaming through it in small pieces, so a decompression bomb costs time but never memory."""
    if not path.name.lower().endswith(".gz"):
        return
    limit = max(FREE_BYTES, max_ratio * path.stat().st_size)
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise CaretwinError(f"{path}: expands to more than {max_ratio:g} times its size "
                                        f"({limit / 2**20:,.0f} MiB) when decompressed; refused as a decompression bomb")
    except (OSError, EOFError, zlib.error) as exc:
        raise CaretwinError(f"{path}: not a readable gzip file ({exc})") from None
