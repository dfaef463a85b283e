"""The engine: reproducible to the bit, common random numbers, conservation, and the directions a leader expects."""

import dataclasses

import numba
import numpy as np
import pytest

from caretwin.errors import ValidationError
from caretwin.simulate import Engine, declared_params, run_replications
from caretwin.simulate.metrics import G_AGE, G_RACE, G_SEX, N_GROUPS, SLOTS
from caretwin.simulate.modules import ALL
from caretwin.simulate.state import (
    BOARDING,
    CSU,
    ENROLLED,
    LINE,
    NEED_SNF_QUEUED,
    SNF,
    Columns,
)
from caretwin.synth import CountyParams
from caretwin.synth.world import build_population

WEEKS = 26


@pytest.fixture(scope="module")
def world():
    return build_population(CountyParams(members=20_000, regions=6, seed=4)).world


def total(sim, metric, line="all"):
    return sim.M[:, :, SLOTS(metric, line)].sum()


def with_providers(world, **changes):
    """A copy of the world with some provider columns changed by functions of (providers)."""
    pr = Columns({k: v.copy() for k, v in world.providers.items()})
    for name, f in changes.items():
        pr[name] = f(pr).astype(pr[name].dtype)
    return dataclasses.replace(world, providers=pr)


# ---------------------------------------------------------------- declarations
def test_every_module_declares_documented_parameters_and_the_twelve_mechanisms_are_there():
    names = [m.name for m in ALL]
    assert len(names) == 12 and len(set(names)) == 12
    p = declared_params()
    for name, (module, decl) in p.declared.items():
        assert decl.unit and decl.meaning and decl.source, name
    assert p.by_module()["hospital"]["max_delayed_discharge_days"] == 10.0


def test_parameter_files_round_trip_and_bad_ones_are_refused_with_their_place(tmp_path):
    p = declared_params()
    p.update({"rate_ed": 0.6, "rel_ed_by_tier": (1, 1, 2, 3)})
    path = tmp_path / "params.toml"
    p.save(path, only_changed=True)
    again = declared_params().load(path)
    assert again.changed() == {"rate_ed": 0.6, "rel_ed_by_tier": (1.0, 1.0, 2.0, 3.0)}
    path.write_text("[utilisation]\nrate_edd = 0.5\nrel_ed_by_tier = [1, 2]\n[hospital]\nrate_ed = 0.5\n")
    with pytest.raises(ValidationError) as err:
        declared_params().load(path)
    found = {(p.row, p.column, p.reason) for p in err.value.problems}
    assert found == {(2, "utilisation.rate_edd", "unknown parameter"),
                     (3, "utilisation.rel_ed_by_tier", "expected a list of 4 numbers"),
                     (5, "hospital.rate_ed", "belongs to [utilisation]")}


# ---------------------------------------------------------------- reproducibility and common random numbers
def test_same_seed_gives_identical_results_with_one_or_two_workers_and_threads():
    w = build_population(CountyParams(members=3000, regions=4, seed=2)).world
    one = run_replications(w, weeks=8, replications=4, seed=7, workers=1)
    two = run_replications(w, weeks=8, replications=4, seed=7, workers=2)
    assert one.backend == "serial" and two.backend == "process"
    assert np.array_equal(one.metrics, two.metrics)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = Engine(w).run(seed=5, weeks=8).M
        numba.set_num_threads(max(2, threads))
        multi = Engine(w).run(seed=5, weeks=8).M
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(single, multi)
    other = run_replications(w, weeks=8, replications=4, seed=8, workers=1)
    assert not np.array_equal(one.metrics, other.metrics)


def test_a_scenario_that_changes_nothing_differs_by_exactly_zero(world):
    base = Engine(world).run(seed=3, weeks=WEEKS).M
    same = declared_params().update({"rate_ed": declared_params()["rate_ed"]})  # set to the value it already has
    noop = Engine(world, same).run(seed=3, weeks=WEEKS, actions={30: [lambda sim: None]}).M
    assert np.array_equal(base, noop)


def test_capacity_added_on_day_d_changes_nothing_before_d(world):
    def add_capacity(sim):
        sim.module("workforce")  # staff and beds arrive on day 70 (week 10)
        hcbs = sim.pr.line == LINE["hcbs"]
        sim.pr.headcount[hcbs] += 3
        sim.pr.budget_fte[hcbs] += 3
        sim.pr.capacity[hcbs] = sim.pr.headcount[hcbs] * sim.p.hours_per_fte_week
        snf = sim.module("hospital").snf
        for node in range(len(snf.c)):
            snf.set_capacity(node, int(snf.c[node]) + 5)

    base = Engine(world).run(seed=3, weeks=WEEKS).M
    more = Engine(world).run(seed=3, weeks=WEEKS, actions={70: [add_capacity]}).M
    assert np.array_equal(base[:10], more[:10])
    assert not np.array_equal(base[10:], more[10:])
    assert more[10:, :, SLOTS("waitlist", "hcbs")].sum() < base[10:, :, SLOTS("waitlist", "hcbs")].sum()


# ---------------------------------------------------------------- conservation
def test_members_beds_and_staff_are_all_accounted_for(world):
    p = declared_params().update({"p_exit_week_when_strained": 0.0})  # no exits: headcount is hires minus leavers
    engine = Engine(world, p)
    sim = engine.new_sim(seed=11, weeks=WEEKS)
    m = sim.m
    enrolled0 = int((m.status == ENROLLED).sum())
    headcount0 = {ln: sim.pr.headcount[sim.pr.line == LINE[ln]].sum() for ln in ("hcbs", "home_health")}
    snf, csu = sim.module("hospital").snf, sim.module("crisis").nodes
    for day in range(7 * WEEKS):
        engine.advance(sim, day, day + 1)
        # every occupied bed has its member in it, and every queued member is where the queue says
        assert (m.loc == SNF).sum() == snf.occupancy().sum()
        assert (m.loc == CSU).sum() == csu.occupancy().sum()
        assert (m.loc == BOARDING).sum() == csu.q_len.sum()
        assert (m.need == NEED_SNF_QUEUED).sum() == snf.q_len.sum()
    M = sim.M.sum(axis=1)
    entered = enrolled0 + np.cumsum(M[:, SLOTS("enrolments")])
    exited = np.cumsum(M[:, SLOTS("disenrolments")] + M[:, SLOTS("institutionalisations")]
                       + M[:, SLOTS("deaths")] - M[:, SLOTS("resident_deaths")])
    assert np.array_equal(M[:, SLOTS("members")], entered - exited)  # entered = present + exited, every week
    for ln, h0 in headcount0.items():
        flow = np.cumsum(M[:, SLOTS("hires", ln)] - M[:, SLOTS("separations", ln)])
        assert np.array_equal(M[:, SLOTS("headcount", ln)], h0 + flow)
    active = m.svc == 3
    committed = np.bincount(m.provider[active], weights=m.hours[active], minlength=len(sim.pr.line))
    assert np.allclose(sim.pr.committed, committed)  # promised hours are exactly the hours of members in service
    scheduled = M[:, SLOTS("scheduled_visits", "hcbs")].sum()
    outcomes = M[:, [SLOTS(k, "hcbs") for k in ("missed_visits", "member_missed_visits")]].sum()
    assert 0 < outcomes < scheduled
    # the county's row of the subgroup array is the regions summed, and each subgroup kind splits it exactly
    np.testing.assert_allclose(sim.G[:, 0], M, rtol=1e-12)
    grouped = [k for k, (metric, _) in enumerate(SLOTS.rows) if metric.by_group]
    for first, last in ((G_AGE, G_SEX), (G_SEX, G_RACE), (G_RACE, N_GROUPS)):
        np.testing.assert_allclose(sim.G[:, first:last, grouped].sum(axis=1), M[:, grouped], rtol=1e-12)


# ---------------------------------------------------------------- direction
def mean_wait(sim, line="hcbs"):
    return total(sim, "wait_days", line) / total(sim, "starts", line)


def wait_ahead(sim, line="hcbs"):
    """Days a newcomer at the end of the run would wait, first come first served: the list over recent starts a day."""
    starts = sim.M[-8:, :, SLOTS("starts", line)].sum() / 56
    return sim.M[-1, :, SLOTS("waitlist", line)].sum() / starts


def missed_rate(sim, line="hcbs"):
    return total(sim, "missed_visits", line) / total(sim, "scheduled_visits", line)


def runs(world, params=None, actions=None, seeds=(1, 2)):
    return [Engine(world, params).run(seed=s, weeks=WEEKS, actions=actions) for s in seeds]


def test_more_staff_fewer_missed_visits_and_shorter_waits(world):
    def staffed(share):
        hcbs = lambda pr: pr.line == LINE["hcbs"]
        return with_providers(world, headcount=lambda pr: np.where(hcbs(pr), np.round(pr.headcount * share), pr.headcount),
                              budget_fte=lambda pr: np.where(hcbs(pr), np.round(pr.budget_fte * share), pr.budget_fte))

    for b, s in zip(runs(staffed(0.8)), runs(staffed(1.1))):
        # with a waiting list, added staff take on waiting members as well as covering visits, so compare the
        # share of scheduled visits the provider missed (its floor is p_missed_provider_base, 1%)
        assert missed_rate(s) < 0.6 * missed_rate(b)
        assert mean_wait(s) < mean_wait(b)
        assert s.M[-1, :, SLOTS("in_service", "hcbs")].sum() > b.M[-1, :, SLOTS("in_service", "hcbs")].sum()


def test_a_referral_surge_lengthens_waits(world):
    # first come, first served: under acuity-first, new high-acuity referrals are seen before the list
    fifo = declared_params().update({"waitlist_priority": 1})
    surge = fifo.copy().update({"rel_referrals": 1.5})
    for b, s in zip(runs(world, fifo), runs(world, surge)):
        assert total(s, "referrals", "hcbs") > 1.3 * total(b, "referrals", "hcbs")
        # waits are months: those who start within the run were mostly on the list already, so the surge shows in
        # the wait ahead of someone joining the list at the end (Little's law: list length / rate of starts)
        assert wait_ahead(s) > 1.2 * wait_ahead(b)
        assert s.M[-1, :, SLOTS("waitlist", "hcbs")].sum() > b.M[-1, :, SLOTS("waitlist", "hcbs")].sum()


def test_a_provider_exit_sends_its_members_back_to_the_waitlist(world):
    caseload = {}

    def close_biggest(sim):
        hcbs = np.flatnonzero((sim.pr.line == LINE["hcbs"]) & sim.pr.is_open)
        k = hcbs[np.argmax(sim.pr.committed[hcbs])]
        caseload["n"] = int(((sim.m.provider == k) & (sim.m.svc == 3)).sum())
        sim.module("stability").close(sim, np.array([k]), sim.day)

    (base,) = runs(world, seeds=(1,))
    (exit_,) = runs(world, actions={14: [close_biggest]}, seeds=(1,))
    assert caseload["n"] > 0
    assert exit_.M[2, :, SLOTS("displaced", "hcbs")].sum() == caseload["n"]
    assert exit_.M[2, :, SLOTS("waitlist", "hcbs")].sum() > base.M[2, :, SLOTS("waitlist", "hcbs")].sum()
    assert exit_.M[2, :, SLOTS("provider_exits", "hcbs")].sum() == 1


def test_fewer_snf_beds_more_delayed_discharge_days(world):
    fewer = with_providers(world, capacity=lambda pr: np.where(pr.line == LINE["snf"], np.floor(pr.capacity * 0.5), pr.capacity))
    for b, s in zip(runs(world), runs(fewer)):
        assert total(s, "delayed_discharge_days") > 1.5 * total(b, "delayed_discharge_days")


def test_more_unmet_need_more_emergency_visits(world):
    # a staff cut leaves hours undelivered; the unmet-need index raises ED hazards (CRN keep the comparison tight)
    cut = with_providers(world, headcount=lambda pr: np.where(pr.line == LINE["hcbs"], pr.headcount * 0.6, pr.headcount))
    for b, s in zip(runs(world), runs(cut)):
        assert total(s, "missed_visits", "hcbs") > 2 * total(b, "missed_visits", "hcbs")
        assert total(s, "ed_visits") > total(b, "ed_visits")


def test_redeployed_staff_leave_one_region_and_arrive_in_the_other(world):
    engine = Engine(world)
    sim = engine.new_sim(seed=1, weeks=4)
    hcbs = sim.pr.line == LINE["hcbs"]
    before = np.bincount(sim.pr.region[hcbs], weights=sim.pr.headcount[hcbs], minlength=world.n_regions)
    moved = sim.module("workforce").redeploy(sim, "hcbs", from_region=0, to_region=3, staff=5)
    after = np.bincount(sim.pr.region[hcbs], weights=sim.pr.headcount[hcbs], minlength=world.n_regions)
    assert moved == 5
    assert after[0] == before[0] - 5 and after[3] == before[3] + 5 and after.sum() == before.sum()
    assert np.array_equal(sim.pr.capacity[hcbs], sim.pr.headcount[hcbs] * sim.p.hours_per_fte_week)


def test_replications_can_each_run_with_their_own_parameter_draw():
    # parameter uncertainty: replications cycle through the draws, the same way on every backend
    w = build_population(CountyParams(members=3000, regions=4, seed=2)).world
    low, high = (declared_params().update({"rate_ed": r}) for r in (0.2, 1.2))
    serial = run_replications(w, weeks=8, replications=4, seed=3, workers=1, draws=[low, high])
    pooled = run_replications(w, weeks=8, replications=4, seed=3, workers=2, draws=[low, high])
    assert np.array_equal(serial.metrics, pooled.metrics) and serial.parameter_sets == 2
    ed = serial.total("ed_visits")
    assert ed[1] > 3 * ed[0] and ed[3] > 3 * ed[2]  # replications 1 and 3 ran with the high rate


def test_a_per_region_parameter_reads_writes_and_acts_on_its_region(world, tmp_path):
    p = declared_params().update({"rel_hcbs_referral_region": {"R02": 3.0}})
    path = tmp_path / "p.toml"
    p.save(path, only_changed=True)
    again = declared_params().load(path)
    assert list(again.by_region("rel_hcbs_referral_region", world.region_ids)) == [1.0, 3.0, 1.0, 1.0, 1.0, 1.0]
    base = Engine(world).run(seed=2, weeks=WEEKS).M[:, :, SLOTS("referrals", "hcbs")].sum(axis=0)
    more = Engine(world, again).run(seed=2, weeks=WEEKS).M[:, :, SLOTS("referrals", "hcbs")].sum(axis=0)
    assert more[1] > 2 * base[1]  # region R02 (index 1) triples its referral hazard
    assert abs(more[0] - base[0]) <= 0.2 * base[0] + 3  # other regions barely change (shared providers aside)


GUARDED_SCRIPT = """
from caretwin.simulate import run_replications
from caretwin.synth import CountyParams
from caretwin.synth.world import build_population

def main():
    world = build_population(CountyParams(members=300, regions=2, seed=1)).world
    print(run_replications(world, weeks=1, replications=2, workers=2).metrics.shape)
{call}
"""


@pytest.mark.parametrize("guarded", [False, True])
def test_a_script_that_simulates_on_import_is_told_to_add_the_main_guard(tmp_path, guarded):
    # without the guard every spawned worker would re-run the script and the run would wait for ever; it must
    # fail at once (within the 120 s allowed here) and say what to add, while the guarded script just runs
    import subprocess
    import sys

    script = tmp_path / "forecast.py"
    script.write_text(GUARDED_SCRIPT.format(call='if __name__ == "__main__":\n    main()' if guarded else "main()"))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    if guarded:
        assert done.returncode == 0, done.stderr
        assert "(2, 1," in done.stdout
    else:
        assert done.returncode != 0
        assert 'if __name__ == "__main__":' in done.stderr and "forecast.py, line 9" in done.stderr
