"""Errors a user can act on: each names where the problem is and why."""

from __future__ import annotations

from dataclasses import dataclass


class CaretwinError(Exception):
    """Base class for errors shown to users without a traceback."""


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file."""

    file: str
    row: int | None  # 1-based data row (the header is not counted); None for file-level problems
    column: str | None
    reason: str
    unit: str = "row"  # what `row` counts: data rows, or lines of a text file (TOML, YAML)

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", {self.unit} {self.row}"
        if self.column:
            where += f", {'field' if self.unit == 'line' else 'column'} {self.column}"
        return f"{where}: {self.reason}"


class ValidationError(CaretwinError):
    """Input refused; `problems` lists every located problem found (up to the error limit)."""

    def __init__(self, problems: list[Problem], truncated: bool = False):
        self.problems = problems
        self.truncated = truncated
        more = "\n  (more problems not shown: raise the error_limit setting to see them)" if truncated else ""
        super().__init__(f"{len(problems)} problem(s):\n  " + "\n  ".join(map(str, problems)) + more)
