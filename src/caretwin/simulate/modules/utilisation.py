"""Utilisation: daily ED-visit and admission hazards from each member's risk, raised by unmet need,
waiting and housing instability, lowered by being in service (care coordination)."""

from __future__ import annotations

import numba as nb
import numpy as np

from caretwin.rng import uniforms
from caretwin.simulate.engine import Module, p_day
from caretwin.simulate.metrics import SLOTS
from caretwin.simulate.params import Param
from caretwin.simulate.state import ACTIVE, ENROLLED, PENDING, WAITING


@nb.njit(parallel=True, cache=True)
def _hazards(out_ed, out_adm, status, tier, age, smi, sud, housing, unmet, svc, rel_acute, rate_ed, rate_adm, rel_ed_tier,
             rel_adm_tier, rel_housing, rel_ed_unmet, rel_adm_unmet, rel_smi, rel_sud, rel_65, rel_child, rel_served,
             rel_waiting):
    for i in nb.prange(len(status)):
        if status[i] != ENROLLED:
            out_ed[i] = 0.0
            out_adm[i] = 0.0
            continue
        common = rel_housing[housing[i]] * rel_acute[i]
        if svc[i] == ACTIVE:
            common *= rel_served
        elif svc[i] == PENDING or svc[i] == WAITING:
            common *= rel_waiting
        ed = rate_ed * rel_ed_tier[tier[i] - 1] * common * (1.0 + rel_ed_unmet * unmet[i])
        adm = rate_adm * rel_adm_tier[tier[i] - 1] * common * (1.0 + rel_adm_unmet * unmet[i])
        if smi[i]:
            ed *= rel_smi
            adm *= 1.3
        if sud[i]:
            ed *= rel_sud
            adm *= 1.2
        if age[i] >= 65:
            adm *= rel_65
        elif age[i] < 18:
            adm *= rel_child
        out_ed[i] = p_day(ed)
        out_adm[i] = p_day(adm)


# waiting (unmet need 1) against full service: 1.0 x 1.25 / 0.9, about 1.4, the inverse of the risk ratio of
# hospitalisation with HCBS
_HCBS_EFFECT = "set together: risk ratio about 0.74 for hospitalisation with HCBS (BMC Geriatrics 2023, Pennsylvania)"


class Utilisation(Module):
    name = "utilisation"
    hazards = ("ed", "admission")
    params = (
        Param("rate_ed", 0.72, "per member-year", "ED visits of a tier-2 member in stable housing",
              "set so the default county's adults make about 0.95 ED visits a year, the Medicaid adult average "
              "(Tang et al., JAMA 2010, NHAMCS 2007), and its children about 0.53 (CMS Child Core Set AMB-CH, "
              "FFY 2020); tiers and housing raise it"),
        Param("rate_admission", 0.03, "per member-year", "direct (not through the ED) admissions of a tier-2 adult",
              "set so the default county has about 120-140 stays per 1,000 members a year, ED admissions included "
              "(116 per 1,000 people for all payers: HCUP Statistical Brief 180)"),
        Param("rel_ed_by_tier", (0.7, 1.0, 1.8, 2.8), "ratio", "ED rate multiplier by acuity tier"),
        Param("rel_admission_by_tier", (0.5, 1.0, 2.2, 4.0), "ratio", "admission rate multiplier by acuity tier"),
        Param("rel_by_housing", (1.0, 1.4, 2.3), "ratio", "acute-care multiplier: stable, at risk, homeless"),
        Param("rel_ed_per_unmet_need", 0.25, "ratio", "ED hazard x (1 + this x unmet-need index)", _HCBS_EFFECT),
        Param("rel_admission_per_unmet_need", 0.25, "ratio", "admission hazard x (1 + this x unmet-need index)",
              _HCBS_EFFECT),
        Param("rel_ed_smi", 1.6, "ratio", "ED multiplier for serious mental illness"),
        Param("rel_ed_sud", 1.5, "ratio", "ED multiplier for substance use disorder"),
        Param("rel_admission_65plus", 1.8, "ratio", "admission multiplier at 65 and over"),
        Param("rel_admission_child", 0.35, "ratio", "admission multiplier under 18",
              "HCUP: children (newborns aside) are admitted a few times less often than adults"),
        Param("rel_acute_in_service", 0.9, "ratio", "acute-care multiplier while receiving HCBS (coordinated care)",
              _HCBS_EFFECT),
        Param("rel_acute_waiting", 1.0, "ratio", "acute-care multiplier while waiting for HCBS", _HCBS_EFFECT),
        Param("p_ed_admitted", 0.11, "per visit", "ED visits that end in admission",
              "about 11% of US ED visits (NCHS Data Brief 252)"),
    )

    # a member's own multiplier on acute care (ED, admissions, crises): 1, or an intervention's effect
    member_columns = {"rel_acute": (np.float32, 1.0)}

    def init(self, sim) -> None:
        self.j_ed, self.j_adm = sim.hazard_index["ed"], sim.hazard_index["admission"]
        self.k_ed = SLOTS("ed_visits")

    def week(self, sim, day: int) -> None:
        m, p = sim.m, sim.p
        _hazards(m.hazard[self.j_ed], m.hazard[self.j_adm], m.status, m.tier, m.age, m.smi, m.sud, m.housing, m.unmet, m.svc, m.rel_acute, p.rate_ed,
                 p.rate_admission, np.array(p.rel_ed_by_tier), np.array(p.rel_admission_by_tier),
                 np.array(p.rel_by_housing), p.rel_ed_per_unmet_need, p.rel_admission_per_unmet_need, p.rel_ed_smi,
                 p.rel_ed_sud, p.rel_admission_65plus, p.rel_admission_child, p.rel_acute_in_service,
                 p.rel_acute_waiting)

    def day(self, sim, day: int) -> None:
        ed = sim.events("ed")
        sim.add(ed, self.k_ed)
        key = sim.key("ed-admitted")
        admitted = uniforms(key, day, ed) < sim.p.p_ed_admitted
        if sim.recorder is not None:
            sim.recorder.ed_visits(sim, ed, admitted, day)
        hospital = sim.module("hospital")
        hospital.admit(sim, np.concatenate([ed[admitted], sim.events("admission")]), day)
