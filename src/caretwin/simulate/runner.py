"""Replications: run one world many times (process pool or Dask), summarise, store under a run id.

Replication seeds come from `numpy.random.SeedSequence(seed).spawn`, and every draw inside a
replication is keyed by (replication seed, stream, day, entity), so results are the same
whatever the backend, the number of workers or the order in which replications finish.
Each task returns only its weekly metrics arrays.
"""

from __future__ import annotations

import ast
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from caretwin._version import __version__
from caretwin.errors import CaretwinError
from caretwin.simulate.engine import Engine, Module, declared_params
from caretwin.simulate.metrics import N_GROUPS, SLOTS
from caretwin.simulate.modules.costs import ITEMS
from caretwin.simulate.params import Params
from caretwin.simulate.state import World

Progress = Callable[[int, int], None]


def replication_seeds(seed: int, replications: int) -> list[int]:
    return [int(s.generate_state(1, np.uint64)[0]) for s in np.random.SeedSequence(seed).spawn(replications)]


@dataclass
class RunResult:
    """Weekly metrics of every replication and how they were made: `metrics[replication, week, region, slot]`
    (each region's whole population) and `groups[replication, week, group, slot]` (over all regions: the county,
    group 0, and each subgroup). Subgroups are not crossed with regions, so outputs grow with regions plus groups,
    not their product."""

    run_id: str
    world: World
    params: Params
    seed: int
    weeks: int
    metrics: np.ndarray
    groups: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    backend: str = "process"
    workers: int = 1
    code_version: str = __version__
    parameter_sets: int = 0  # parameter draws the replications cycled through (0: one fixed set)
    outcomes: list[dict[str, np.ndarray]] = field(default_factory=list)  # per replication: modules' `outcome(sim)`
    evidence: Any = None  # caretwin.simulate.evidence.Evidence: where the parameters came from

    @property
    def replications(self) -> int:
        return self.metrics.shape[0]

    def total(self, metric: str, line: str = "all") -> np.ndarray:
        """A metric summed over regions and weeks, per replication (whole population)."""
        return self.metrics[:, :, :, SLOTS(metric, line)].sum(axis=(1, 2))

    def weekly(self, metric: str, line: str = "all", region: int | None = None, group: int = 0) -> np.ndarray:
        """`[replication, week]` of one metric: for one region, or summed over all (of one subgroup with `group`)."""
        k = SLOTS(metric, line)
        if group:
            if region is not None:
                raise ValueError("subgroups are kept for the whole county only, not by region")
            return self.groups[:, :, group, k]
        x = self.metrics[:, :, :, k]
        return x.sum(axis=2) if region is None else x[:, :, region]

    def week_starts(self) -> list:
        return [self.world.start + timedelta(days=7 * w) for w in range(self.weeks)]


# ---------------------------------------------------------------- tasks (module-level, so they pickle)
_WORKER: dict[str, Any] = {}


def _init_worker(world: World, sets: list[list[Params]], modules: list[list[Module] | None]) -> None:
    """Each job's parameter sets and modules, by job index."""
    import numba

    numba.set_num_threads(1)  # replications are the parallelism; one thread each avoids oversubscription
    _WORKER.update(world=world, sets=sets, modules=modules, engines={})


Replicate = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]


class _Outputs:
    """One job's replications, written into arrays made once as they finish (no list stacked at the end, which
    would hold every output twice)."""

    def __init__(self, world: World, weeks: int, replications: int):
        self.metrics = np.zeros((replications, weeks, world.n_regions, len(SLOTS)), np.float32)
        self.groups = np.zeros((replications, weeks, N_GROUPS, len(SLOTS)), np.float32)
        self.outcomes: list[dict[str, np.ndarray]] = [{} for _ in range(replications)]

    def put(self, r: int, rep: Replicate) -> None:
        self.metrics[r], self.groups[r], self.outcomes[r] = rep


def _one(engine: Engine, seed: int, weeks: int) -> Replicate:
    """One replication's weekly metrics (by region, by subgroup), and the small per-replication outcomes of
    modules that keep them."""
    sim = engine.run(seed, weeks)
    outcomes = {}
    for mod in engine.modules:
        if hasattr(mod, "outcome"):
            outcomes.update(mod.outcome(sim))
    return sim.M.astype(np.float32), sim.G.astype(np.float32), outcomes


def _replicate(job: int, which: int, seed: int, weeks: int) -> Replicate:
    engines = _WORKER["engines"]
    if (job, which) not in engines:
        engines[(job, which)] = Engine(_WORKER["world"], _WORKER["sets"][job][which], _WORKER["modules"][job])
    return _one(engines[(job, which)], seed, weeks)


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


@dataclass
class Job:
    """One run to make: a parameter set (or draws of it), modules, horizon, replications and seed."""

    params: Params
    weeks: int = 26
    replications: int = 100
    seed: int = 0
    modules: list[Module] | None = None
    draws: Sequence[Params] | None = None
    run_id: str | None = None

    @property
    def sets(self) -> list[Params]:
        return list(self.draws) if self.draws else [self.params]


def run_replications(world: World, params: Params | None = None, *, weeks: int = 26, replications: int = 100,
                     seed: int = 0, workers: int | None = None, scheduler: str | None = None,
                     progress: Progress | None = None, modules: list[Module] | None = None,
                     run_id: str | None = None, draws: Sequence[Params] | None = None) -> RunResult:
    """Run `replications` replications of `weeks` weeks; `scheduler` ("tcp://host:port" or a dask Client) uses Dask.

    With `draws` (parameter sets drawn from their uncertainty, e.g. by calibration), replication r runs
    with `draws[r % len(draws)]`, so the spread of the results carries parameter uncertainty as well as
    the model's own randomness; `params` then only labels the run (its central values).
    """
    params = params if params is not None else resolve_params(world, None, modules)
    job = Job(params, weeks, replications, seed, modules, draws, run_id)
    return next(run_many(world, [job], workers=workers, scheduler=scheduler, progress=progress))


def run_many(world: World, jobs: Sequence[Job], *, workers: int | None = None, scheduler: str | None = None,
             progress: Progress | None = None) -> Iterator[RunResult]:
    """Run several jobs on one world, yielding each result in order as soon as it is complete.

    On the process pool every job's replications are queued at once, so the workers go on with the
    next job while the caller stores the last (and the pool starts once, not once per job).
    `progress` counts replications over all the jobs.
    """
    for job in jobs:
        if job.weeks < 1 or job.replications < 1:
            raise CaretwinError("weeks and replications must be at least 1")
    total = sum(j.replications for j in jobs)
    seeds = [replication_seeds(j.seed, j.replications) for j in jobs]
    which = [[r % len(j.sets) for r in range(j.replications)] for j in jobs]
    workers = workers or min(os.cpu_count() or 1, total)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    def result(k: int, out: _Outputs, wall: float, backend: str) -> RunResult:
        j = jobs[k]
        member_days = float(world.n_members) * 7 * j.weeks * j.replications
        return RunResult(j.run_id or new_run_id(), world, j.params, j.seed, j.weeks, out.metrics, out.groups,
                         backend=backend, workers=workers,
                         timings={"wall_s": round(wall, 3), "member_days_per_s": round(member_days / wall, 1)},
                         parameter_sets=len(j.sets) if j.draws else 0, outcomes=out.outcomes)

    if scheduler is not None or workers == 1:
        for k, j in enumerate(jobs):
            t0 = time.perf_counter()
            out = _Outputs(world, j.weeks, j.replications)
            if scheduler is not None:
                _run_dask(scheduler, world, j.sets, which[k], j.modules, seeds[k], j.weeks, out, tick)
            else:
                engines = [Engine(world, p, j.modules) for p in j.sets]
                for r, s in enumerate(seeds[k]):
                    out.put(r, _one(engines[which[k][r]], s, j.weeks))
                    tick()
            yield result(k, out, time.perf_counter() - t0, "dask" if scheduler is not None else "serial")
        return
    _refuse_unguarded_script()
    ctx = mp.get_context("spawn")  # numba's threading layer is not fork-safe
    outs: list[_Outputs | None] = [None] * len(jobs)
    left = [j.replications for j in jobs]
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(world, [j.sets for j in jobs], [j.modules for j in jobs]))
    try:
        t0 = time.perf_counter()
        futures = {pool.submit(_replicate, k, which[k][r], s, j.weeks): (k, r)
                   for k, j in enumerate(jobs) for r, s in enumerate(seeds[k])}
        pending = iter(as_completed(futures))
        for k in range(len(jobs)):
            while left[k]:
                f = next(pending)
                kk, r = futures[f]
                if outs[kk] is None:
                    outs[kk] = _Outputs(world, jobs[kk].weeks, jobs[kk].replications)
                outs[kk].put(r, f.result())
                left[kk] -= 1
                tick()
            t1 = time.perf_counter()
            yield result(k, outs[k], t1 - t0, "process")
            outs[k] = None
            t0 = time.perf_counter()
    finally:  # also when the caller stops early or fails: queued replications are dropped
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(scheduler: Any, world: World, sets: list[Params], which: list[int], modules, seeds: list[int],
              weeks: int, out: _Outputs, tick: Callable[[], None]) -> None:
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
            out.put(index[f.key], f.result())
            tick()
    finally:
        if client is not scheduler:
            client.close()


def _refuse_unguarded_script() -> None:
    """Refuse to start the process pool from a script's top level outside `if __name__ == "__main__":`.

    Spawned workers import the main script again; one that simulates as it is imported starts a pool in
    every worker, whose workers die, and the run waits for them for ever.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not os.path.isfile(path):  # a notebook, `python -c` or the REPL: nothing is re-imported
        return
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__"):
        frame = frame.f_back
    if frame is None or os.path.abspath(frame.f_code.co_filename) != os.path.abspath(path):
        return
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return
    guarded = [(n.lineno, n.end_lineno or n.lineno) for n in tree.body if isinstance(n, ast.If) and _is_main_test(n.test)]
    if not any(a <= frame.f_lineno <= b for a, b in guarded):
        raise CaretwinError(
            f"{path}, line {frame.f_lineno}: simulations run on a pool of worker processes, which import this script "
            "again; put the code that runs them under `if __name__ == \"__main__\":` (or pass workers=1)")


def _is_main_test(test: ast.expr) -> bool:
    """Whether an `if` tests `__name__ == "__main__"` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides)
            and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides))


def new_run_id() -> str:
    return time.strftime("run-%Y%m%d-%H%M%S-", time.gmtime()) + os.urandom(3).hex()
