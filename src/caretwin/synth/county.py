"""The synthetic county: a generated population whose history is produced by the simulation engine.

One model, not two: `build_population` makes the starting world, the engine's twelve
modules run it through a burn-in and the window, and a recorder keeps what happens as
event rows. Days are indexed from the window's first day (day 0); the burn-in runs on
negative days and is not written out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from caretwin.simulate.engine import Engine, declared_params
from caretwin.simulate.params import Params
from caretwin.synth.params import CountyParams
from caretwin.synth.recorder import DX_CODES, Recorder
from caretwin.synth.state import Log, Records
from caretwin.synth.world import build_population

NEVER = np.iinfo(np.int32).max
LANGUAGES = ("en", "es", "zh", "vi", "ko", "tl", "ar", "ru")


@dataclass
class County:
    """Everything the history produces: state arrays and event logs."""

    params: CountyParams
    engine_params: Params
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    travel: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    members: dict[str, np.ndarray] = field(default_factory=dict)
    providers: dict[str, np.ndarray] = field(default_factory=dict)
    episodes: Records | None = None
    stays: Records | None = None
    logs: dict[str, Log] = field(default_factory=dict)
    reference_population: dict[str, dict[str, float]] = field(default_factory=dict)


def simulate_county(params: CountyParams, engine_params: Params | None = None) -> County:
    """Build a county and let the engine run its history over the burn-in and the window."""
    p = declared_params() if engine_params is None else engine_params
    pop = build_population(params, p)
    engine = Engine(pop.world, p)
    first = -params.burn_in_days
    weeks = -(-(params.days - first) // 7)
    sim = engine.new_sim(params.seed, weeks, start_day=first)
    rec = Recorder(sim, params.seed)
    rec.initial(sim, first)
    sim.recorder = rec
    engine.advance(sim, first, params.days)
    m, pr, w = sim.m, sim.pr, pop.world
    members = {
        "region": m.region, "birth_year": pop.birth_year, "sex": m.sex, "race": m.race, "language": pop.language,
        "tier": m.tier, "chronic": pop.chronic, "smi": m.smi, "sud": m.sud, "housing": m.housing,
        "caregiver": m.caregiver, "enroll_start": pop.enroll_start, "enroll_end": rec.enroll_end, "death": rec.death,
        "age_band": np.digitize(params.start.year - pop.birth_year, [18, 65, 80]).astype(np.int8),
    }
    providers = {
        "line": pr.line, "region": pr.region, "capacity": pr.capacity, "is_staffed": engine.modules[0].staffed_mask,
        "open": pr.is_open, "closed_day": pr.ti_closed, "opened_day": pop.opened_day,
    }
    regions = {"rurality": w.rurality, "population": pop.population, "lat": pop.lat, "lon": pop.lon}
    return County(params, p, regions, w.travel.astype(np.float64), members, providers, rec.episodes, rec.stays,
                  rec.logs, pop.reference_population)


__all__ = ["DX_CODES", "LANGUAGES", "NEVER", "County", "simulate_county"]
