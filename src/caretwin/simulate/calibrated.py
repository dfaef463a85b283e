"""Parameter files written by calibration: the point estimates as the engine's TOML, and beside it a
JSON record of every estimate (interval, method, data, or the default used) with its draws."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Any

from caretwin.calibrate import Calibration, calibrate
from caretwin.governance.audit import Actor, audited
from caretwin.simulate.engine import declared_params
from caretwin.simulate.params import Params
from caretwin.workspace import Workspace

N_DRAWS = 200


def sidecar(path: Path) -> Path:
    return path.with_name(path.stem + ".calibration.json")


def complete(values: dict[str, Any]) -> dict[str, Any]:
    """Estimates as engine values: elements the data could not inform (NaN) keep their defaults."""
    declared = declared_params().declared
    out = {}
    for name, v in values.items():
        if isinstance(v, tuple) and any(math.isnan(x) for x in v):
            default = declared[name][1].default
            v = tuple(d if math.isnan(x) else x for x, d in zip(v, default))
        out[name] = v
    return out


def params_of(cal: Calibration, draw: int | None = None) -> Params:
    """The engine's parameters from a calibration: its point estimates, or one of its draws."""
    values = cal.values() if draw is None else cal.draw(draw)
    return declared_params().update(complete(values), source="calibration")


def write(cal: Calibration, path: Path) -> dict[str, Any]:
    """Write the parameter file and its sidecar; returns the sidecar's content."""
    params = params_of(cal)
    estimated = {e.name for e in cal.estimates if e.supported}
    defaults = [{"name": name, "module": module, "value": p.default, "supported": False,
                 "note": "not estimated from these data; the documented default is used", "source": p.source}
                for name, (module, p) in params.declared.items() if name not in estimated]
    record = {"window": {"start": str(cal.window.start), "end": str(cal.window.end)},
              "estimates": cal.records(), "defaults": defaults,
              "skipped": [{"estimator": k, "why": why} for k, why in cal.skipped],
              "draws": [_jsonable(complete(d)) for d in cal.draws(N_DRAWS)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    params.save(path)
    tmp = sidecar(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=_jsonable))
    tmp.replace(sidecar(path))
    return record


def draws_for(path: Path, base: Params) -> list[Params] | None:
    """Parameter sets for each draw recorded beside a calibrated parameter file (None when there is none)."""
    side = sidecar(Path(path))
    if not side.exists():
        return None
    draws = json.loads(side.read_text())["draws"]
    out = []
    for d in draws:
        p = declared_params().update(base.changed() | {k: v for k, v in d.items()}, source=str(side))
        out.append(p)
    return out


def calibrate_to(ws: Workspace, out: Path, until: date | None = None, seed: int = 0, *,
                 actor: Actor | None = None) -> tuple[Calibration, dict]:
    """Calibrate and write the parameter file and its sidecar (recorded in the audit trail as done by `actor`,
    the operating-system user unless given)."""
    cal = calibrate(ws, until=until, draws=N_DRAWS, seed=seed)
    with audited(ws, actor, kind="change", action="C", subtype="model.calibrate", entity_type="parameters",
                 entity_id=Path(out).name, detail={"until": str(until) if until else None, "seed": seed}):
        return cal, write(cal, out)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x
