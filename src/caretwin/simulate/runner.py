"""Replications: run one world many times (process pool or Dask), summarise, store under a run id.

Replication seeds come from `numpy.random.SeedSequence(seed).spawn`, and every draw inside a
replication is keyed by (replication seed, stream, day, entity), so results are the same
whatever the backend, the number of workers or the order in which replications finish.
Each task returns only its weekly metrics array.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from caretwin._version import __version__
from caretwin.errors import CaretwinError
from caretwin.simulate.engine import Engine, Module, declared_params
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.modules.costs import ITEMS
from caretwin.simulate.params import Params
from caretwin.simulate.state import World

Progress = Callable[[int, int], None]


def replication_seeds(seed: int, replications: int) -> list[int]:
    return [int(s.generate_state(1, np.uint64)[0]) for s in np.random.SeedSequence(seed).spawn(replications)]


@dataclass
class RunResult:
    """Weekly metrics of every replication, `[replication, week, region, group, slot]`, and how they were made."""

    run_id: str
    world: World
    params: Params
    seed: int
    weeks: int
    metrics: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    backend: str = "process"
    workers: int = 1
    code_version: str = __version__
    parameter_sets: int = 0  # parameter draws the replications cycled through (0: one fixed set)
    outcomes: list[dict[str, np.ndarray]] = field(default_factory=list)  # per replication: modules' `outcome(sim)`

    @property
    def replications(self) -> int:
        return self.metrics.shape[0]

    def total(self, metric: str, line: str = "all") -> np.ndarray:
        """A metric summed over regions and weeks, per replication (whole population)."""
        return self.metrics[:, :, :, 0, SLOTS(metric, line)].sum(axis=(1, 2))

    def weekly(self, metric: str, line: str = "all", region: int | None = None, group: int = 0) -> np.ndarray:
        """`[replication, week]` of one metric, for one region or summed over all."""
        x = self.metrics[:, :, :, group, SLOTS(metric, line)]
        return x.sum(axis=2) if region is None else x[:, :, region]

    def week_starts(self) -> list:
        return [self.world.start + timedelta(days=7 * w) for w in range(self.weeks)]


# ---------------------------------------------------------------- tasks (module-level, so they pickle)
_WORKER: dict[str, Any] = {}


def _init_worker(world: World, sets: list[Params], modules: list[Module] | None) -> None:
    import numba

    numba.set_num_threads(1)  # replications are the parallelism; one thread each avoids oversubscription
    _WORKER.update(world=world, sets=sets, modules=modules, engines={})


Replicate = tuple[np.ndarray, dict[str, np.ndarray]]


def _one(engine: Engine, seed: int, weeks: int) -> Replicate:
    """One replication's weekly metrics, and the small per-replication outcomes of modules that keep them."""
    sim = engine.run(seed, weeks)
    outcomes = {}
    for mod in engine.modules:
        if hasattr(mod, "outcome"):
            outcomes.update(mod.outcome(sim))
    return sim.M.astype(np.float32), outcomes


def _replicate(which: int, seed: int, weeks: int) -> Replicate:
    engines = _WORKER["engines"]
    if which not in engines:
        engines[which] = Engine(_WORKER["world"], _WORKER["sets"][which], _WORKER["modules"])
    return _one(engines[which], seed, weeks)


def _replicate_with(world: World, params: Params, modules: list[Module] | None, seed: int, weeks: int) -> Replicate:
    import numba

    numba.set_num_threads(1)
    return _one(Engine(world, params, modules), seed, weeks)


def resolve_params(world: World, params: Params | str | os.PathLike[str] | None, modules: list[Module] | None = None) -> Params:
    """Defaults, then the workspace's unit costs, then the parameter file (which wins)."""
    resolved = declared_params(modules)
    costs = {ITEMS[item]: float(v) for item, v in world.unit_costs.items() if item in ITEMS and ITEMS[item] in resolved}
    resolved.update(costs, source="unit_costs")
    if isinstance(params, Params):
        resolved.update(params.changed(), source="parameters")
    elif params is not None:
        resolved.load(params)
    return resolved


def run_replications(world: World, params: Params | None = None, *, weeks: int = 26, replications: int = 100,
                     seed: int = 0, workers: int | None = None, scheduler: str | None = None,
                     progress: Progress | None = None, modules: list[Module] | None = None,
                     run_id: str | None = None, draws: Sequence[Params] | None = None) -> RunResult:
    """Run `replications` replications of `weeks` weeks; `scheduler` ("tcp://host:port" or a dask Client) uses Dask.

    With `draws` (parameter sets drawn from their uncertainty, e.g. by calibration), replication r runs
    with `draws[r % len(draws)]`, so the spread of the results carries parameter uncertainty as well as
    the model's own randomness; `params` then only labels the run (its central values).
    """
    if weeks < 1 or replications < 1:
        raise CaretwinError("weeks and replications must be at least 1")
    params = params if params is not None else resolve_params(world, None, modules)
    sets = list(draws) if draws else [params]
    which = [r % len(sets) for r in range(replications)]
    seeds = replication_seeds(seed, replications)
    workers = workers or min(os.cpu_count() or 1, replications)
    out: list[Replicate | None] = [None] * replications
    t0 = time.perf_counter()
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, replications)

    if scheduler is not None:
        backend = "dask"
        _run_dask(scheduler, world, sets, which, modules, seeds, weeks, out, tick)
    elif workers == 1:
        backend = "serial"
        engines = [Engine(world, p, modules) for p in sets]
        for r, s in enumerate(seeds):
            out[r] = _one(engines[which[r]], s, weeks)
            tick()
    else:
        backend = "process"
        ctx = mp.get_context("spawn")  # numba's threading layer is not fork-safe
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(world, sets, modules)) as pool:
            futures = {pool.submit(_replicate, which[r], s, weeks): r for r, s in enumerate(seeds)}
            for f in as_completed(futures):
                out[futures[f]] = f.result()
                tick()
    wall = time.perf_counter() - t0
    metrics = np.stack([M for M, _ in out])
    member_days = float(world.n_members) * 7 * weeks * replications
    run_id = run_id or new_run_id()
    return RunResult(run_id, world, params, seed, weeks, metrics, backend=backend, workers=workers,
                     timings={"wall_s": round(wall, 3), "member_days_per_s": round(member_days / wall, 1)},
                     parameter_sets=len(sets) if draws else 0, outcomes=[o for _, o in out])


def _run_dask(scheduler: Any, world: World, sets: list[Params], which: list[int], modules, seeds: list[int],
              weeks: int, out: list, tick: Callable[[], None]) -> None:
    try:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise CaretwinError("the Dask backend needs the distributed extra: pip install 'caretwin[distributed]'") from exc
    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        world_f, modules_f = client.scatter([world, modules], broadcast=True)
        set_fs = client.scatter(sets, broadcast=True)
        futures = [client.submit(_replicate_with, world_f, set_fs[which[r]], modules_f, s, weeks, pure=False)
                   for r, s in enumerate(seeds)]
        index = {f.key: r for r, f in enumerate(futures)}
        for f in dask_completed(futures):
            out[index[f.key]] = f.result()
            tick()
    finally:
        if client is not scheduler:
            client.close()


def new_run_id() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S-", time.gmtime()) + os.urandom(3).hex()
