"""The engine's capacity node against queueing theory (Erlang C, Erlang A, Little's law) and a peer simulator (Ciw)."""

import math

import ciw  # a development dependency: the peer simulator
import numpy as np
import pytest

from caretwin.simulate.nodes import Nodes


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C)."""
    a = lam / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam)


def run_node(lam: float, mean_service: float, c: int, days: int, seed: int, warmup: int = 200):
    """Poisson arrivals into one node, advanced a day at a time as the engine does.

    Returns (mean wait of customers arriving after the warm-up, mean busy servers at day ends, throughput/day).
    """
    rng = np.random.default_rng(seed)
    n = rng.poisson(lam * days)
    t = np.sort(rng.uniform(0, days, n))
    s = rng.exponential(mean_service, n)
    node = Nodes(np.array([c]), np.array([np.inf]))
    waits, busy, served = [], [], 0
    for d in range(days):
        lo, hi = np.searchsorted(t, [d, d + 1])
        kind, _, member, _, wait = node.advance(np.zeros(hi - lo, np.int64), np.arange(lo, hi), t[lo:hi], s[lo:hi], d + 1.0)
        started = kind == 0
        late = t[member[started]] >= warmup
        waits.append(wait[started][late])
        if d >= warmup:
            busy.append(node.occupancy()[0])
            served += int((kind == 1).sum())
    return np.concatenate(waits).mean(), np.mean(busy), served / (days - warmup)


# (arrivals per day, mean service in days, servers): utilisation 0.5, 0.65, 0.8 and 0.9
SETTINGS = [(20.0, 0.25, 10), (13.0, 0.25, 5), (24.0, 1.0, 30), (9.0, 0.2, 2)]


@pytest.mark.parametrize("lam,mean_service,c", SETTINGS)
def test_multi_server_node_matches_erlang_c(lam, mean_service, c):
    # tolerance 5% on the mean wait and on utilisation; seed 1; 30,000 days (hundreds of thousands of customers)
    wait, busy, _ = run_node(lam, mean_service, c, days=30_000, seed=1)
    rho = lam * mean_service / c
    assert 0.5 <= rho <= 0.9
    assert wait == pytest.approx(erlang_c_wait(lam, 1 / mean_service, c), rel=0.05)
    assert busy / c == pytest.approx(rho, rel=0.05)


def test_bed_occupancy_follows_littles_law():
    # L = lambda x W: mean beds in use = throughput x mean length of stay (tolerance 3%, seed 2)
    lam, mean_stay, beds = 3.0, 4.0, 20
    _, occupied, throughput = run_node(lam, mean_stay, beds, days=20_000, seed=2)
    assert occupied == pytest.approx(throughput * mean_stay, rel=0.03)


def test_waiting_customers_give_up_after_their_patience():
    # an M/M/1 with patience 0.5 days: nobody waits longer, and some leave (a SNF bed not found in time)
    rng = np.random.default_rng(3)
    node = Nodes(np.array([1]), np.array([0.5]))
    gave_up = started = 0
    for d in range(2000):
        k = rng.poisson(2.0)
        t = d + np.sort(rng.uniform(0, 1, k))
        kind, _, _, _, wait = node.advance(np.zeros(k, np.int64), np.arange(k) + 10 * d, t, rng.exponential(0.6, k), d + 1.0)
        assert (wait[kind == 0] <= 0.5 + 1e-9).all()
        gave_up += int((kind == 2).sum())
        started += int((kind == 0).sum())
    assert gave_up > 0.05 * (gave_up + started)


def test_the_same_queue_in_ciw_agrees_within_confidence_intervals():
    # M/M/3 at utilisation 0.8, 20 replications each of 3,000 days after a 200-day warm-up (seeds 0-19);
    # the difference of the two means must lie inside its 95% confidence interval.
    lam, mu, c, days, warmup, reps = 2.4, 1.0, 3, 3000, 200, 20

    def ciw_mean(seed: int) -> float:
        ciw.seed(seed)
        network = ciw.create_network(arrival_distributions=[ciw.dists.Exponential(rate=lam)],
                                     service_distributions=[ciw.dists.Exponential(rate=mu)], number_of_servers=[c])
        sim = ciw.Simulation(network)
        sim.simulate_until_max_time(days)
        return float(np.mean([r.waiting_time for r in sim.get_all_records() if r.arrival_date > warmup]))

    ours = np.array([run_node(lam, 1 / mu, c, days, seed=100 + s, warmup=warmup)[0] for s in range(reps)])
    peer = np.array([ciw_mean(s) for s in range(reps)])
    diff = ours.mean() - peer.mean()
    half_width = 1.96 * math.sqrt(ours.var(ddof=1) / reps + peer.var(ddof=1) / reps)
    assert abs(diff) <= half_width
    # and both agree with theory within 5%
    assert ours.mean() == pytest.approx(erlang_c_wait(lam, mu, c), rel=0.05)


def erlang_a(lam: float, mu: float, theta: float, c: int, n_max: int = 1000) -> tuple[float, float, float]:
    """M/M/c+M (Erlang A) from its birth-death chain: (mean time in queue of all arrivals, share who give
    up, server occupancy)."""
    rates = [lam / (min(n, c) * mu + max(n - c, 0) * theta) for n in range(1, n_max)]
    p = np.concatenate([[1.0], np.cumprod(rates)])
    p /= p.sum()
    n = np.arange(n_max)
    queue = float((np.maximum(n - c, 0) * p).sum())
    return queue / lam, theta * queue / lam, float((np.minimum(n, c) * p).sum() / c)


def run_impatient_node(lam: float, c: int, mean_patience: float, days: int, seed: int, warmup: int = 200):
    """Poisson arrivals, exponential service (mean 1 day) and exponential patience into one node, a day at a
    time. Returns (mean wait of all arrivals after the warm-up, share who gave up, mean busy share at day ends)."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(lam * days)
    t = np.sort(rng.uniform(0, days, n))
    s, patience = rng.exponential(1.0, n), rng.exponential(mean_patience, n)
    node = Nodes(np.array([c]), np.array([mean_patience]))
    waits, gave_up, busy = [], [], []
    for d in range(days):
        lo, hi = np.searchsorted(t, [d, d + 1])
        kind, _, member, _, wait = node.advance(np.zeros(hi - lo, np.int64), np.arange(lo, hi), t[lo:hi], s[lo:hi],
                                                d + 1.0, patience=patience[lo:hi])
        done = (kind != 1) & (t[member] >= warmup)
        waits.append(wait[done])
        gave_up.append(kind[done] == 2)
        if d >= warmup:
            busy.append(node.occupancy()[0] / c)
    return np.concatenate(waits).mean(), np.concatenate(gave_up).mean(), np.mean(busy)


def test_exponential_patience_makes_the_node_an_erlang_a_queue():
    # M/M/8+M at load 0.95, mean patience twice the service time: Erlang A gives a mean wait of 0.194 (all
    # arrivals), 9.68% giving up and occupancy 0.858. Tolerance 5% on each; seed 4; 20,000 days (152,000 arrivals)
    lam, c, mean_patience = 7.6, 8, 2.0
    wait, gave_up, busy = run_impatient_node(lam, c, mean_patience, days=20_000, seed=4)
    theory = erlang_a(lam, 1.0, 1 / mean_patience, c)
    assert theory[1] == pytest.approx(0.0968, abs=5e-4) and theory[2] == pytest.approx(0.858, abs=5e-4)
    assert wait == pytest.approx(theory[0], rel=0.05)
    assert gave_up == pytest.approx(theory[1], rel=0.05)
    assert busy == pytest.approx(theory[2], rel=0.05)


def test_fixed_patience_waits_longer_and_gives_up_less_than_exponential_at_the_same_mean():
    # the same M/M/8 at load 0.95, patience always 2 days: nobody gives up before 2 days, so fewer give up
    # (M/M/c+D against Erlang A); seed 5, 10,000 days
    lam, c = 7.6, 8
    exp_wait, exp_gave_up, _ = run_impatient_node(lam, c, 2.0, days=10_000, seed=5)
    rng = np.random.default_rng(5)
    n = rng.poisson(lam * 10_000)
    t = np.sort(rng.uniform(0, 10_000, n))
    s = rng.exponential(1.0, n)
    node = Nodes(np.array([c]), np.array([2.0]))  # the node's fixed limit
    kinds = []
    for d in range(10_000):
        lo, hi = np.searchsorted(t, [d, d + 1])
        kind, _, member, _, wait = node.advance(np.zeros(hi - lo, np.int64), np.arange(lo, hi), t[lo:hi], s[lo:hi], d + 1.0)
        assert np.allclose(wait[kind == 2], 2.0)
        kinds.append(kind[(kind != 1) & (t[member] >= 200)])
    fixed_gave_up = (np.concatenate(kinds) == 2).mean()
    assert fixed_gave_up < 0.6 * exp_gave_up


def test_the_impatient_queue_in_ciw_agrees_within_confidence_intervals():
    # M/M/8+M at load 0.95 in Ciw (reneging) and in the node: 10 replications of 2,000 days each (seeds 0-9 and
    # 200-209); the difference of the two mean shares giving up must lie inside its 95% confidence interval
    lam, c, theta, days, warmup, reps = 7.6, 8, 0.5, 2000, 100, 10

    def ciw_share(seed: int) -> float:
        ciw.seed(seed)
        network = ciw.create_network(arrival_distributions=[ciw.dists.Exponential(rate=lam)],
                                     service_distributions=[ciw.dists.Exponential(rate=1.0)], number_of_servers=[c],
                                     reneging_time_distributions=[ciw.dists.Exponential(rate=theta)])
        sim = ciw.Simulation(network)
        sim.simulate_until_max_time(days)
        kinds = [r.record_type for r in sim.get_all_records() if r.arrival_date > warmup]
        return kinds.count("renege") / len(kinds)

    ours = np.array([run_impatient_node(lam, c, 1 / theta, days, seed=200 + s, warmup=warmup)[1] for s in range(reps)])
    peer = np.array([ciw_share(s) for s in range(reps)])
    half_width = 1.96 * math.sqrt(ours.var(ddof=1) / reps + peer.var(ddof=1) / reps)
    assert abs(ours.mean() - peer.mean()) <= half_width
