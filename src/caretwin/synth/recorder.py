"""Records what the engine does as event rows, which the extract writer turns into canonical tables."""

from __future__ import annotations

import numpy as np

from caretwin.model.schema import DISCHARGE_DISPOSITIONS, ENCOUNTER_CLASSES
from caretwin.rng import stream
from caretwin.simulate.state import (
    ACTIVE,
    DIED,
    DISENROLLED,
    INSTITUTIONALISED,
    LINE,
    NEED_DIED,
    NEED_HCBS,
    NEED_HOME,
    NEED_HOME_HEALTH,
    NEED_PSYCH,
    NEVER,
    NURSING,
    WAITING,
)
from caretwin.synth.state import Log, Records

ENC = {name: i for i, name in enumerate(ENCOUNTER_CLASSES)}
DISP = {name: i for i, name in enumerate(DISCHARGE_DISPOSITIONS)}
# episode (referral) states
PENDING, AUTHORISED, STARTED, CLOSED, WITHDRAWN = range(5)
NEED_TO_DISP = {NEED_HOME: DISP["home"], NEED_DIED: DISP["died"], NEED_HOME_HEALTH: DISP["home_health"],
                NEED_HCBS: DISP["hcbs"], NEED_PSYCH: DISP["psychiatric"]}
DX = {
    "emergency": ("R07.9", "R10.9", "J06.9", "S09.90XA", "N39.0", "R51.9", "M54.50"),
    "inpatient": ("I50.9", "J44.1", "J18.9", "A41.9", "N39.0", "E11.65", "I63.9", "S72.001A"),
    "psych": ("F20.9", "F31.9", "F32.9", "F10.129", "R45.851"),
}
DX_CODES = tuple(code for codes in DX.values() for code in codes)  # stays store an index into this


class Recorder:
    """Engine hooks that keep episodes, stays and logs in the shapes `caretwin.synth.extract` reads."""

    def __init__(self, sim, seed: int):
        self.seed = seed
        n, pr = sim.world.n_members, sim.pr
        i4, i2, i1, f4 = np.int32, np.int16, np.int8, np.float32
        self.episodes = Records(capacity=max(1024, n // 5), member=i4, line=i1, region=i2, received=i4, authorised=i4,
                                started=i4, ended=i4, status=i1, hours=f4, provider=i4, priority=i1)
        self.stays = Records(capacity=4096, member=i4, cls=i1, facility=i4, admit=i4, ready=i4, discharge=i4,
                             disposition=i1, need=i1, dx=i2)
        self.logs = {
            "visits": Log(episode=i4, day=i4, status=i1, hours=f4),
            "workforce": Log(provider=i4, day=i4, headcount=i4, vacancies=i4, hires=i4, separations=i4, overtime=f4,
                             training=f4),
            "incidents": Log(provider=i4, member=i4, day=i4, kind=i1, severity=i1),
            "complaints": Log(provider=i4, member=i4, day=i4, kind=i1, severity=i1),
            "housing": Log(member=i4, day=i4, status=i1),
        }
        self.episode = np.full(n, -1, np.int64)
        self.stay = np.full(n, -1, np.int64)
        self.boarding_since = np.full(n, NEVER, np.int32)
        self.enroll_end = np.full(n, NEVER, np.int32)
        self.death = np.full(n, NEVER, np.int32)
        self.facility = {}
        for line in ("hospital", "snf", "crisis_stabilization", "mobile_crisis", "nursing_facility"):
            f = np.full(sim.world.n_regions, -1, np.int32)
            sel = np.flatnonzero(pr.line == LINE[line])
            f[pr.region[sel][::-1]] = sel[::-1]  # the region's first provider of the line
            self.facility[line] = f

    # ------------------------------------------------------------------ helpers
    def _dx(self, kind: str, members: np.ndarray, day: int) -> np.ndarray:
        rng = stream(self.seed, f"dx-{kind}", day)
        return (DX_CODES.index(DX[kind][0]) + rng.integers(0, len(DX[kind]), len(members))).astype(np.int16)

    def _stay(self, members, cls, facility, admit, ready, discharge, disposition, need, dx) -> np.ndarray:
        idx = self.stays.add(member=members, cls=np.full(len(members), ENC[cls]), facility=facility, admit=admit,
                             ready=ready, discharge=discharge, disposition=disposition, need=need, dx=dx)
        return idx

    def _end_stays(self, members: np.ndarray, day: int, disposition: np.ndarray | int) -> None:
        k = self.stay[members]
        ok = k >= 0
        self.stays.discharge[k[ok]] = day
        self.stays.ready[k[ok]] = np.minimum(self.stays.ready[k[ok]], day)
        self.stays.disposition[k[ok]] = np.broadcast_to(disposition, members.shape)[ok]
        self.stay[members] = -1

    def initial(self, sim, first_day: int) -> None:
        """Services already running when the run starts become episodes received before it."""
        m = sim.m
        on = np.flatnonzero(m.svc != 0)
        idx = self.episodes.add(member=on, line=m.svc_line[on], region=m.region[on], received=m.ti_referred[on],
                                authorised=m.ti_authorised[on], started=np.where(m.svc[on] == ACTIVE, m.ti_started[on], NEVER),
                                ended=NEVER, status=np.where(m.svc[on] == ACTIVE, STARTED, AUTHORISED),
                                hours=m.hours[on], provider=m.provider[on], priority=m.priority[on])
        self.episode[on] = idx
        residents = np.flatnonzero(m.loc == NURSING)
        self.stay[residents] = self._stay(residents, "snf", self.facility["nursing_facility"][m.region[residents]],
                                          m.ti_admit[residents], NEVER - 1, NEVER, -1, -1,
                                          self._dx("inpatient", residents, first_day))

    # ------------------------------------------------------------------ community services
    def episodes_opened(self, sim, members, day) -> None:
        m = sim.m
        waiting = m.svc[members] == WAITING
        idx = self.episodes.add(member=members, line=m.svc_line[members], region=m.region[members], received=day,
                                authorised=np.where(waiting, day, NEVER), started=NEVER, ended=NEVER,
                                status=np.where(waiting, AUTHORISED, PENDING), hours=m.hours[members], provider=-1,
                                priority=m.priority[members])
        self.episode[members] = idx

    def episodes_closed(self, sim, members, day, reason) -> None:
        e = self.episodes
        k = self.episode[members]
        k = k[k >= 0]
        e.status[k] = np.where(e.status[k] == STARTED, CLOSED, WITHDRAWN)
        e.ended[k] = day
        self.episode[members] = -1

    def authorised(self, sim, members, day) -> None:
        k = self.episode[members]
        self.episodes.authorised[k] = day
        self.episodes.status[k] = AUTHORISED

    def started(self, sim, members, day) -> None:
        k = self.episode[members]
        self.episodes.started[k] = day
        self.episodes.status[k] = STARTED
        self.episodes.provider[k] = sim.m.provider[members]

    def displaced(self, sim, members, day) -> None:
        self.episodes_closed(sim, members, day, "provider_exit")
        m = sim.m
        idx = self.episodes.add(member=members, line=m.svc_line[members], region=m.region[members], received=day,
                                authorised=day, started=NEVER, ended=NEVER, status=AUTHORISED, hours=m.hours[members],
                                provider=-1, priority=5)
        self.episode[members] = idx

    def visits(self, sim, day) -> None:
        if day < 0:  # the burn-in is not written out
            return
        m = sim.m
        who = np.flatnonzero((m.visit >= 0) & (m.svc == ACTIVE))
        self.logs["visits"].add(episode=self.episode[who], day=np.full(len(who), day, np.int32), status=m.visit[who],
                                hours=m.hours[who] / m.visits_pw[who])

    def workforce(self, sim, providers, day, hires, seps, overtime) -> None:
        pr = sim.pr
        self.logs["workforce"].add(provider=providers, day=np.full(len(providers), day), headcount=pr.headcount[providers],
                                   vacancies=np.maximum(np.round(pr.budget_fte[providers]) - pr.headcount[providers], 0),
                                   hires=hires, separations=seps, overtime=overtime.round(1),
                                   training=pr.training[providers].round(3))

    def quality(self, sim, providers, incidents, complaints, day) -> None:
        rng = stream(self.seed, "quality-records", day)
        m = sim.m
        serving = np.flatnonzero(m.svc == ACTIVE)
        by_provider = m.provider[serving]
        order = np.argsort(by_provider, kind="stable")
        for log, counts, kp in (("incidents", incidents, (0.3, 0.2, 0.05, 0.2, 0.15, 0.1)),
                                ("complaints", complaints, (0.3, 0.3, 0.15, 0.1, 0.1, 0.05))):
            prov = np.repeat(providers, counts)
            if len(prov) == 0:
                continue
            lo = np.searchsorted(by_provider[order], prov, "left")
            hi = np.searchsorted(by_provider[order], prov, "right")
            pick = lo + (rng.random(len(prov)) * (hi - lo)).astype(np.int64)
            member = np.full(len(prov), -1, np.int64)
            has = hi > lo
            member[has] = serving[order[pick[has]]]
            self.logs[log].add(provider=prov, member=member, day=day - rng.integers(0, 7, len(prov)),
                               kind=rng.choice(6, len(prov), p=kp), severity=rng.choice(4, len(prov), p=(0.5, 0.3, 0.15, 0.05)))

    def housing(self, sim, members, day) -> None:
        rng = stream(self.seed, "housing-records", day)
        self.logs["housing"].add(member=members, day=day + rng.integers(0, 7, len(members)), status=sim.m.housing[members])

    def left(self, sim, members, day, status) -> None:
        if status == DIED:
            self.death[members] = np.minimum(self.death[members], day)
            self._end_stays(members[self.stay[members] >= 0], day, DISP["died"])
        if status in (DIED, DISENROLLED):
            self.enroll_end[members] = np.minimum(self.enroll_end[members], day)
        if status == INSTITUTIONALISED:
            self.moved_in(sim, members, day)

    def moved_in(self, sim, members, day) -> None:
        """A permanent move: any open stay ends with it, and a nursing-facility stay with no end begins."""
        self._end_stays(members, day, DISP["nursing_facility"])
        if len(members):
            self.stay[members] = self._stay(members, "snf", self.facility["nursing_facility"][sim.m.region[members]], day,
                                            NEVER - 1, NEVER, -1, -1, self._dx("inpatient", members, day))

    # ------------------------------------------------------------------ acute care
    def ed_visits(self, sim, members, admitted, day) -> None:
        n = len(members)
        if n:
            self._stay(members, "emergency", self.facility["hospital"][sim.m.region[members]], day, day, day,
                       np.where(admitted, DISP["transfer"], DISP["home"]), -1, self._dx("emergency", members, day))

    def admitted(self, sim, members, day, psych) -> None:
        m = sim.m
        self.stay[members] = self._stay(members, "inpatient", self.facility["hospital"][m.region[members]], day,
                                        m.ti_ready[members], NEVER, -1, m.need[members],
                                        self._dx("psych" if psych else "inpatient", members, day))

    def discharged(self, sim, members, day) -> None:
        need = sim.m.need[members]
        disp = np.array([NEED_TO_DISP.get(int(x), DISP["home"]) for x in need], np.int8)
        self._end_stays(members, day, disp)

    def snf_events(self, sim, start, end, gone, moved, day) -> None:
        m = sim.m
        self._end_stays(start, day, DISP["snf"])
        if len(start):
            self.stay[start] = self._stay(start, "snf", self.facility["snf"][m.region[start]], day, NEVER - 1, NEVER, -1, -1,
                                          self._dx("inpatient", start, day))
        self.moved_in(sim, moved, day)
        self._end_stays(end[~np.isin(end, moved)], day, DISP["home"])
        self._end_stays(gone, day, DISP["home_without_support"])

    def crisis(self, sim, members, needs_bed, day) -> None:
        if len(members) == 0:
            return
        self._stay(members, "crisis", self.facility["mobile_crisis"][sim.m.region[members]], day, day, day,
                   np.where(needs_bed, DISP["transfer"], DISP["home"]), -1, self._dx("psych", members, day))
        self.boarding_since[members[needs_bed]] = day

    def csu_events(self, sim, start, end, gone, psych, day) -> None:
        m = sim.m
        if len(start):
            node = sim.module("crisis").node_of_region[m.region[start]]
            self.stay[start] = self._stay(start, "crisis", self.facility["crisis_stabilization"][node], day, NEVER - 1,
                                          NEVER, -1, -1, self._dx("psych", start, day))
        self._end_stays(end, day, DISP["home"])
        if len(gone):
            since = np.minimum(self.boarding_since[gone], day)
            self._stay(gone, "emergency", self.facility["hospital"][m.region[gone]], since, since, day,
                       np.where(np.isin(gone, psych), DISP["psychiatric"], DISP["home"]), -1, self._dx("psych", gone, day))
