"""Community service episodes (HCBS, home health) shared by the modules that open and close them."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import uniform
from caretwin.simulate.state import ACTIVE, LINE, NEVER, NONE

HCBS, HOME_HEALTH = LINE["hcbs"], LINE["home_health"]
UNKNOWN_END = NEVER  # ti_service_end of a service whose end the data do not say: drawn at the start of a run


@nb.njit(cache=True)
def open_episodes(key, day, members, line, status, priority, tier, hours_by_tier, dur_hcbs, dur_home_health,
                  hh_hours, svc, svc_line, ti_referred, hours, dur_service, pattern, visits_pw, prio):
    """Referral received (or authorised directly at hospital discharge): hours, duration and visit days."""
    for j in range(len(members)):
        i = members[j]
        if line == HCBS:
            h = hours_by_tier[tier[i] - 1] * (0.75 + 0.5 * uniform(key, day, i, 0))
            h = np.round(h * 2.0) / 2.0
            dur = -dur_hcbs * np.log1p(-uniform(key, day, i, 1))
        else:
            h = hh_hours
            dur = 14.0 - (dur_home_health - 14.0) * np.log1p(-uniform(key, day, i, 1))
        v = min(7, max(1, int(np.ceil(h / 4.0))))
        offset = int(uniform(key, day, i, 2) * 7.0)
        bits = 0
        for k in range(v):  # spread v visits evenly over the week from a random weekday
            bits |= 1 << ((offset + (k * 7) // v) % 7)
        svc[i] = status
        svc_line[i] = line
        ti_referred[i] = day
        hours[i] = h
        dur_service[i] = max(1, int(dur))
        pattern[i] = bits
        visits_pw[i] = v
        prio[i] = priority


@nb.njit(cache=True)
def close_episodes(members, svc, provider, hours, committed):
    """End episodes: hours promised to members in service are released."""
    for j in range(len(members)):
        i = members[j]
        if svc[i] == ACTIVE and provider[i] >= 0:
            committed[provider[i]] -= hours[i]
        svc[i] = NONE
        provider[i] = -1


@nb.njit(cache=True)
def complete_episodes(key, members, line_hh, dur_hcbs, dur_home_health, svc_line, hours, dur_service, ti_service_end,
                      pattern, visits_pw, active):
    """Episodes that arrive from data without a duration or visit days get them (remaining time is memoryless)."""
    for j in range(len(members)):
        i = members[j]
        if dur_service[i] <= 0:
            mean = dur_home_health if svc_line[i] == line_hh else dur_hcbs
            dur_service[i] = max(1, int(-mean * np.log1p(-uniform(key, 0, i, 0))))
        if active[i] and ti_service_end[i] == UNKNOWN_END:
            ti_service_end[i] = dur_service[i]
        if pattern[i] == 0:
            v = min(7, max(1, int(np.ceil(max(hours[i], 1.0) / 4.0))))
            offset = int(uniform(key, 0, i, 1) * 7.0)
            bits = 0
            for k in range(v):
                bits |= 1 << ((offset + (k * 7) // v) % 7)
            pattern[i] = bits
            visits_pw[i] = v


def roster(sim) -> np.ndarray:
    """Members with an open episode (any state but NONE), in member order: a few percent of members, so daily
    queues need not scan everyone. `open_for` is the only way in; closed episodes drop out when it is read."""
    svc = sim.m.svc
    return sim.tracked("roster", lambda: np.flatnonzero(svc != NONE), lambda r: svc[r] != NONE)


def in_state(sim, state: int) -> np.ndarray:
    """Members whose episode is in `state` (PENDING, WAITING, ACTIVE), in member order."""
    r = roster(sim)
    return r[sim.m.svc[r] == state]


def open_for(sim, members: np.ndarray, line: int, day: int, status: int, priority: int | np.ndarray | None = None) -> None:
    """Open episodes for members (any open episode of theirs is replaced)."""
    if len(members) == 0:
        return
    m, p = sim.m, sim.p
    close_for(sim, members, day, "replaced")
    prio = np.int8(0)
    open_episodes(sim.key("episode"), day, members, line, status, prio, m.tier,
                  np.array(p.hcbs_hours_by_tier), p.dur_hcbs_service_days, p.dur_home_health_days,
                  p.home_health_hours_week, m.svc, m.svc_line, m.ti_referred, m.hours, m.dur_service,
                  m.pattern, m.visits_pw, m.priority)
    m.priority[members] = m.tier[members] if priority is None else priority
    sim.join("roster", members)
    if sim.recorder is not None:
        sim.recorder.episodes_opened(sim, members, day)


def close_for(sim, members: np.ndarray, day: int, reason: str) -> None:
    if len(members) == 0:
        return
    m = sim.m
    if sim.recorder is not None:
        sim.recorder.episodes_closed(sim, members[m.svc[members] != NONE], day, reason)
    close_episodes(members, m.svc, m.provider, m.hours, sim.pr.committed)
