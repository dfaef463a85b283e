"""Folders written aside and renamed into place, so a failure leaves nothing half-written; cells made safe
for spreadsheets."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that a spreadsheet will not run: text starting like a formula (=, +, -, @, tab, carriage
    return) gets a leading apostrophe, as OWASP advises against CSV injection; numbers and other values pass."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
