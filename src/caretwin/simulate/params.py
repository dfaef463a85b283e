"""Parameters: each module declares its own; a run resolves them into one flat set.

The file format is TOML with one table per module (`[workforce]`, `[hospital]`...), so
calibration can write a file that a person can read, diff and edit.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caretwin.errors import Problem, ValidationError

Value = float | int | tuple[float, ...] | dict[str, float]


@dataclass(frozen=True)
class Param:
    """One model parameter: its default, unit, what it means and where the default comes from."""

    name: str
    default: Value
    unit: str
    meaning: str
    source: str = "assumption: plausible order of magnitude, to be calibrated"
    per_region: bool = False  # one number, or a table of numbers by region_id (the default for regions not named)

    @property
    def length(self) -> int | None:
        return len(self.default) if isinstance(self.default, tuple) else None


class Params(Mapping[str, Any]):
    """Resolved parameter values (flat: names are unique across modules), with their declarations."""

    def __init__(self, declared: Iterable[tuple[str, Param]], values: Mapping[str, Value] | None = None):
        self.declared: dict[str, tuple[str, Param]] = {}
        for module, p in declared:
            if p.name in self.declared:
                raise ValueError(f"parameter {p.name!r} declared by both {self.declared[p.name][0]} and {module}")
            self.declared[p.name] = (module, p)
        self._values: dict[str, Value] = {n: p.default for n, (_, p) in self.declared.items()}
        if values:
            self.update(values)

    def update(self, values: Mapping[str, Value], source: str = "<dict>") -> Params:
        problems = []
        for name, v in values.items():
            if name not in self.declared:
                problems.append(Problem(source, None, name, "unknown parameter"))
                continue
            p = self.declared[name][1]
            if p.per_region and isinstance(v, Mapping):
                bad = [k for k, x in v.items() if isinstance(x, bool) or not isinstance(x, (int, float))]
                if bad:
                    problems.append(Problem(source, None, name, f"expected a number for each region, not for {bad[0]!r}"))
                    continue
                self._values[name] = {str(k): float(x) for k, x in sorted(v.items())}
                continue
            if p.length is not None:
                if not isinstance(v, (list, tuple)) or len(v) != p.length:
                    problems.append(Problem(source, None, name, f"expected a list of {p.length} numbers"))
                    continue
                v = tuple(float(x) for x in v)
            elif isinstance(v, (list, tuple, bool)) or not isinstance(v, (int, float)):
                problems.append(Problem(source, None, name, "expected one number"))
                continue
            else:
                v = type(p.default)(v) if isinstance(p.default, int) and float(v).is_integer() else float(v)
            self._values[name] = v
        if problems:
            raise ValidationError(problems)
        return self

    def copy(self) -> Params:
        """An independent copy of the values (the declarations are shared: they never change)."""
        new = Params.__new__(Params)
        new.declared = self.declared
        new._values = dict(self._values)
        return new

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def by_region(self, name: str, region_ids: Iterable[str]) -> np.ndarray:
        """A per-region parameter as one value per region, in `region_ids` order."""
        v = self._values[name]
        default = float(self.declared[name][1].default)
        if isinstance(v, dict):
            return np.array([v.get(r, default) for r in region_ids])
        return np.full(len(tuple(region_ids)), float(v))

    def by_module(self) -> dict[str, dict[str, Value]]:
        out: dict[str, dict[str, Value]] = {}
        for name, (module, _) in self.declared.items():
            out.setdefault(module, {})[name] = self._values[name]
        return out

    def changed(self) -> dict[str, Value]:
        return {n: v for n, v in self._values.items() if v != self.declared[n][1].default}

    # -------------------------------------------------------------- file format
    def load(self, path: str | Path) -> Params:
        """Read a parameter file; every problem is reported with its line and `module.parameter`."""
        path = Path(path)
        text = path.read_text()
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError([Problem(str(path), None, None, f"not valid TOML: {exc}")]) from exc
        lines = text.splitlines()

        def line_of(name: str) -> int | None:
            for i, line in enumerate(lines, 1):
                if line.split("=", 1)[0].strip() == name:
                    return i
            return None

        modules = {m for m, _ in self.declared.values()}
        problems = []
        for section, values in data.items():
            if not isinstance(values, dict) or section not in modules:
                problems.append(Problem(str(path), line_of(f"[{section}]"), section,
                                        f"not a module; modules are {', '.join(sorted(modules))}", unit="line"))
                continue
            for name, v in values.items():
                where = (str(path), line_of(name), f"{section}.{name}")
                owner = self.declared.get(name, (None,))[0]
                if owner is None:
                    problems.append(Problem(*where, "unknown parameter", unit="line"))
                elif owner != section:
                    problems.append(Problem(*where, f"belongs to [{owner}]", unit="line"))
                else:
                    try:
                        self.update({name: v}, source=str(path))
                    except ValidationError as exc:
                        problems += [Problem(*where, p.reason, unit="line") for p in exc.problems]
        if problems:
            raise ValidationError(problems)
        return self

    def dumps(self, only_changed: bool = False) -> str:
        lines = []
        for module, values in self.by_module().items():
            rows = {n: v for n, v in values.items() if not only_changed or v != self.declared[n][1].default}
            if not rows:
                continue
            lines.append(f"[{module}]")
            for name, v in rows.items():
                p = self.declared[name][1]
                if isinstance(v, dict):
                    text = "{ " + ", ".join(f'"{k}" = {float(x)!r}' for k, x in v.items()) + " }"
                elif isinstance(v, tuple):
                    text = "[" + ", ".join(repr(float(x)) for x in v) + "]"
                else:
                    text = repr(v)
                lines.append(f"{name} = {text}  # {p.unit}: {p.meaning}")
            lines.append("")
        return "\n".join(lines)

    def save(self, path: str | Path, only_changed: bool = False) -> None:
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.dumps(only_changed))
        tmp.replace(path)
