"""The engine: a daily step over struct-of-arrays state, run by a fixed list of modules.

Each day every enrolled member at home gets one uniform draw, which picks at most one
event among the competing daily hazards the modules own (ED visit, admission, crisis,
death, disenrolment, referral). Modules then act on their events and on their queues in
a fixed order; weekly they refresh hazards and run provider-level mechanisms. All draws
come from `caretwin.rng.uniform`, keyed by (replication seed, stream, day, entity).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numba as nb
import numpy as np

from caretwin.rng import stream_key, uniform
from caretwin.simulate.metrics import (
    G_AGE,
    G_RACE,
    G_SEX,
    N_GROUPS,
    SLOTS,
    age_band_index,
)
from caretwin.simulate.params import Param, Params
from caretwin.simulate.state import ENROLLED, HOME, MEMBER_CORE, Columns, World


class Module:
    """A mechanism: declares parameters and state columns; acts at `init`, each `week` and each `day`."""

    name: ClassVar[str]
    params: ClassVar[tuple[Param, ...]] = ()
    member_columns: ClassVar[dict[str, tuple[type, Any]]] = {}
    provider_columns: ClassVar[dict[str, tuple[type, Any]]] = {}
    hazards: ClassVar[tuple[str, ...]] = ()  # competing daily member hazards this module owns

    def init(self, sim: Sim) -> None:
        pass

    def week(self, sim: Sim, day: int) -> None:
        pass

    def day(self, sim: Sim, day: int) -> None:
        pass

    def week_end(self, sim: Sim, day: int) -> None:
        pass

    def reserve(self, world: World, p: Params, seed: int, weeks: int) -> Columns | None:
        """Members to add to a replication before it starts, not yet enrolled (e.g. a pool of joiners)."""
        return None


@nb.njit(inline="always", cache=True)
def p_day(annual: float) -> float:
    """Daily probability of an event with this annual rate: 1 - exp(-rate / 365).

    A cubic series below 1% a day (relative error under 4e-8, finer than the float32 it is stored in),
    which makes the weekly hazard refresh about twice as fast; the exact form above.
    """
    y = annual / 365.0
    if y < 0.01:
        return y * (1.0 - y * (0.5 - y / 6.0))
    return -np.expm1(-y)


@nb.njit(cache=True)
def add_member(M, G, w, region, age_g, sex_g, race_g, k, v):
    """Add v to metric slot k: for the member's region (`M[week, region, slot]`, whole population), and for the
    whole county and each of the member's subgroups (`G[week, group, slot]`, summed over regions)."""
    M[w, region, k] += v
    G[w, 0, k] += v
    G[w, age_g, k] += v
    G[w, sex_g, k] += v
    G[w, race_g, k] += v


@nb.njit(parallel=True, cache=True)
def _totals(hazard, total):
    """Each member's summed daily hazard, accumulated exactly as `_draw` does (so a skip is never wrong)."""
    h, n = hazard.shape
    for i in nb.prange(n):
        acc = 0.0
        for j in range(h):
            acc += hazard[j, i]
        total[i] = acc


DRAW_CHUNKS = 64  # members are drawn in this many contiguous chunks, in parallel; hits are gathered chunk by chunk


@nb.njit(parallel=True, cache=True)
def _draw(key, day, status, loc, hazard, total, readmit_until, p_readmit, i_admission, event):
    """One uniform per member at home picks at most one of the competing hazards (event = 1 + index);
    returns the members with an event, in member order (gathered from the chunks that found them)."""
    h, n = hazard.shape
    size = (n + DRAW_CHUNKS - 1) // DRAW_CHUNKS
    found = np.zeros(DRAW_CHUNKS + 1, np.int64)
    for c in nb.prange(DRAW_CHUNKS):
        k = 0
        for i in range(c * size, min(n, (c + 1) * size)):
            event[i] = 0
            if status[i] != ENROLLED or loc[i] != HOME:
                continue
            u = uniform(key, day, i)
            extra = p_readmit[i] if readmit_until[i] >= day else 0.0
            if u >= total[i] + extra:  # no event today: most members, most days
                continue
            acc = 0.0
            for j in range(h):
                acc += hazard[j, i]
                if j == i_admission and readmit_until[i] >= day:
                    acc += p_readmit[i]
                if u < acc:
                    event[i] = j + 1
                    k += 1
                    break
        found[c + 1] = k
    start = np.cumsum(found)
    hits = np.empty(start[-1], np.int64)
    for c in nb.prange(DRAW_CHUNKS):
        k = start[c]
        for i in range(c * size, min(n, (c + 1) * size)):
            if event[i] != 0:
                hits[k] = i
                k += 1
    return hits


@nb.njit(cache=True)
def _census(M, G, w, k_members, status, region, age_g, sex_g, race_g):
    for i in range(len(status)):
        if status[i] == ENROLLED:
            add_member(M, G, w, region[i], age_g[i], sex_g[i], race_g[i], k_members, 1.0)


@dataclass
class Sim:
    """One replication's state. Modules read and write it; the engine owns the loop."""

    world: World
    p: Params
    seed: int
    modules: list[Module]
    weeks: int
    m: Columns
    pr: Columns
    M: np.ndarray  # [week, region, slot]: weekly metrics of each region's whole population
    G: np.ndarray  # [week, group, slot]: the same over all regions, for the county (group 0) and each subgroup
    recorder: Any = None
    day: int = 0  # days since the run's first day (metrics' week = day // 7)
    start_day: int = 0  # the engine day of the run's first day (negative for a burn-in)
    hazard_index: dict[str, int] = field(default_factory=dict)  # competing hazard -> row of m.hazard
    today: dict[str, np.ndarray] = field(default_factory=dict)  # hazard -> members whose draw picked it today
    tracked_sets: dict[str, np.ndarray] = field(default_factory=dict)  # see `tracked`
    joining: dict[str, list[np.ndarray]] = field(default_factory=dict)  # members joining a tracked set, not yet merged

    def key(self, name: str) -> np.uint64:
        """The counter-RNG key of one named stream in this replication."""
        return stream_key(self.seed, name)

    def module(self, name: str) -> Module:
        return next(m for m in self.modules if m.name == name)

    def tracked(self, name: str, build: Callable[[], np.ndarray], keep: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """A small set of members read daily without scanning everyone, in member order: `build()` makes it the
        first time, `join` adds to it (the only way in), and `keep(set)` (a mask) drops those who left on each read."""
        r = self.tracked_sets.get(name)
        if r is None:
            r = build()
        else:
            adds = self.joining.pop(name, None)
            if adds:
                new = np.unique(np.concatenate(adds))
                pos = np.searchsorted(r, new)
                there = (pos < len(r)) & (r[np.minimum(pos, len(r) - 1)] == new) if len(r) else np.zeros(len(new), bool)
                r = np.insert(r, pos[~there], new[~there])
            r = r[keep(r)]
        self.tracked_sets[name] = r
        return r

    def join(self, name: str, members: np.ndarray) -> None:
        """Members join a tracked set (merged when it is next read; nothing to do while it has not been built)."""
        if name in self.tracked_sets and len(members):
            self.joining.setdefault(name, []).append(np.array(members, np.int64))

    def events(self, name: str) -> np.ndarray:
        """Members whose draw today picked the named hazard, in member order."""
        return self.today.get(name, _EMPTY)

    def add(self, members: np.ndarray, slot: int, values: np.ndarray | float = 1.0) -> None:
        """Add per-member values to today's week of a metric slot, for each member's region and subgroups."""
        if len(members) == 0:
            return
        w = self.day // 7
        if w >= self.weeks:
            return
        m = self.m
        if isinstance(values, float):
            _add_const(self.M, self.G, w, members, m["region"], m["g_age"], m["g_sex"], m["g_race"], slot, values)
        else:
            _add_many(self.M, self.G, w, members, m["region"], m["g_age"], m["g_sex"], m["g_race"], slot,
                      np.broadcast_to(np.asarray(values, dtype=np.float64), members.shape))

    def add_region(self, region: np.ndarray, slot: int, values: np.ndarray | float) -> None:
        """Add to today's week of a metric by region, and to the county's total (provider-level metrics)."""
        w = self.day // 7
        if w < self.weeks:
            values = np.broadcast_to(np.asarray(values, np.float64), np.shape(region))
            np.add.at(self.M[w, :, slot], region, values)
            self.G[w, 0, slot] += values.sum()


_EMPTY = np.empty(0, np.int64)
Action = Callable[[Sim], None]


@nb.njit(cache=True)
def _add_many(M, G, w, members, region, age_g, sex_g, race_g, k, v):
    for j in range(len(members)):
        i = members[j]
        add_member(M, G, w, region[i], age_g[i], sex_g[i], race_g[i], k, v[j])


@nb.njit(cache=True)
def _add_const(M, G, w, members, region, age_g, sex_g, race_g, k, v):
    for j in range(len(members)):
        i = members[j]
        add_member(M, G, w, region[i], age_g[i], sex_g[i], race_g[i], k, v)


def _append(m: Columns, extra: Columns) -> Columns:
    """Member columns with `extra` rows after them; a column `extra` lacks takes its core default (else zero)."""
    k = len(next(iter(extra.values())))
    out = Columns()
    for name, col in m.items():
        default = MEMBER_CORE[name][1] if name in MEMBER_CORE else 0
        add = np.asarray(extra[name], col.dtype) if name in extra else np.full(k, default, col.dtype)
        out[name] = np.concatenate([col, add])
    return out


def default_modules() -> list[Module]:
    """The twelve mechanisms of DESIGN section 4, in the order they act each day."""
    from caretwin.simulate.modules import ALL

    return [cls() for cls in ALL]


def declared_params(modules: list[Module] | None = None) -> Params:
    """Every parameter the modules declare, at its default."""
    modules = default_modules() if modules is None else modules
    return Params((mod.name, p) for mod in modules for p in mod.params)


class Engine:
    """Runs replications of one world under one parameter set."""

    def __init__(self, world: World, params: Params | None = None, modules: list[Module] | None = None):
        self.world = world
        self.modules = default_modules() if modules is None else modules
        self.params = params if params is not None else declared_params(self.modules)
        self.hazard_names = [h for mod in self.modules for h in mod.hazards]

    def new_sim(self, seed: int, weeks: int, recorder: Any = None, start_day: int = 0) -> Sim:
        w = self.world
        m = Columns({k: v.copy() for k, v in w.members.items()})
        for extra in (mod.reserve(w, self.params, seed, weeks) for mod in self.modules):
            if extra:
                m = _append(m, extra)
        n = len(m["region"])
        pr = Columns({k: v.copy() for k, v in w.providers.items()})
        for mod in self.modules:
            for cols, decl, size in ((m, mod.member_columns, n), (pr, mod.provider_columns, w.n_providers)):
                for name, (dt, default) in decl.items():
                    if name in cols:
                        cols[name] = np.ascontiguousarray(cols[name], dtype=dt)
                    else:
                        cols[name] = np.full(size, default, dt)
        m["g_age"] = (G_AGE + age_band_index(m.age)).astype(np.int8)
        m["g_sex"] = (G_SEX + m.sex).astype(np.int8)
        m["g_race"] = (G_RACE + m.race).astype(np.int8)
        m["hazard"] = np.zeros((len(self.hazard_names), n), np.float32)  # one contiguous row per hazard
        m["hazard_total"] = np.zeros(n, np.float64)
        m["event"] = np.zeros(n, np.int8)
        M = np.zeros((weeks, w.n_regions, len(SLOTS)), np.float64)
        G = np.zeros((weeks, N_GROUPS, len(SLOTS)), np.float64)
        sim = Sim(world=w, p=self.params, seed=seed, modules=self.modules, weeks=weeks, m=m, pr=pr, M=M, G=G,
                  recorder=recorder,
                  start_day=start_day, hazard_index={h: j for j, h in enumerate(self.hazard_names)})
        for mod in self.modules:
            mod.init(sim)
        return sim

    def run(self, seed: int, weeks: int, recorder: Any = None, start_day: int = 0,
            actions: Mapping[int, Sequence[Action]] | None = None) -> Sim:
        """Simulate `weeks` weeks from day `start_day`; metrics are indexed by week from the start.

        `actions` maps a day (counted from the start) to changes applied before that day's step:
        a scenario's interventions (add beds, move staff) and shocks.
        """
        sim = self.new_sim(seed, weeks, recorder, start_day)
        self.advance(sim, start_day, start_day + 7 * weeks, actions)
        return sim

    def advance(self, sim: Sim, first: int, end: int, actions: Mapping[int, Sequence[Action]] | None = None) -> None:
        """Step engine days [first, end); can be called repeatedly to step a run piece by piece."""
        key = sim.key("events")
        m = sim.m
        i_adm = sim.hazard_index.get("admission", -1)
        k_members = SLOTS("members")
        actions = actions or {}
        for day in range(first, end):
            sim.day = day - sim.start_day
            for act in actions.get(sim.day, ()):
                act(sim)
            if sim.day % 7 == 0:
                for mod in self.modules:
                    mod.week(sim, day)
                _totals(m.hazard, m.hazard_total)
            hit = _draw(key, day, m.status, m.loc, m.hazard, m.hazard_total, m.readmit_until, m.p_readmit, i_adm, m.event)
            codes = m.event[hit]
            sim.today = {name: hit[codes == j + 1] for j, name in enumerate(self.hazard_names)}
            for mod in self.modules:
                mod.day(sim, day)
            if sim.day % 7 == 6:
                w = sim.day // 7
                if w < sim.weeks:
                    _census(sim.M, sim.G, w, k_members, m.status, m.region, m.g_age, m.g_sex, m.g_race)
                for mod in self.modules:
                    mod.week_end(sim, day)

