"""The engine's capacity node against queueing theory (Erlang C, Little's law) and a peer simulator (Ciw)."""

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
