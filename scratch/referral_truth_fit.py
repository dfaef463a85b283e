import numpy as np
from caretwin.synth import CountyParams
from caretwin.synth.county import simulate_county
from caretwin.calibrate.fit import poisson
params = CountyParams(members=100000, regions=6, months=12, seed=2)
c = simulate_county(params)
e, m, st = c.episodes, c.members, c.stays
n = len(m["region"])
age = params.start.year - m["birth_year"]
tier = m["tier"].astype(np.int64); reg = m["region"].astype(np.int64); nocg = (~m["caregiver"]).astype(np.int64)
keys = {}
Y = {}; N = {}
for wk in range(52):
    d = 7 * wk
    enrolled = (m["enroll_start"] <= d) & (m["enroll_end"] > d) & (m["death"] > d)
    open_ep = np.zeros(n, bool); o = (e.received < d) & (e.ended >= d); open_ep[e.member[o]] = True
    away = np.zeros(n, bool); s_ = (st.admit <= d) & (st.discharge > d) & (st.discharge != st.admit) & np.isin(st.cls, (1, 3, 4)); away[st.member[s_]] = True
    at = enrolled & ~open_ep & ~away
    ev = (e.received >= d) & (e.received < d + 7) & (e.line == 0) & (e.authorised != e.received)
    ev_m = e.member[ev]; ev_m = ev_m[at[ev_m]]
    cell = reg * 1000 + tier * 100 + (age >= 65).astype(np.int64) * 10 + (age < 18).astype(np.int64) * 2 + nocg
    cnt = np.bincount(cell[at], minlength=7000); y = np.bincount(cell[ev_m], minlength=7000)
    for k in np.flatnonzero(cnt):
        key = (wk, k); N[key] = cnt[k]; Y[key] = y[k]
ks = list(N)
wk = np.array([k[0] for k in ks], float); cell = np.array([k[1] for k in ks])
r = cell // 1000; t = (cell // 100) % 10; old = (cell // 10) % 10; child = (cell // 2) % 5 % 2; nc = cell % 2
X = np.column_stack([np.ones(len(ks))] + [(t == k) * 1.0 for k in (2, 3, 4)] + [old, child, nc, 7 * wk / 365] + [(r == j) * 1.0 for j in range(1, 6)])
names = ["c", "t2", "t3", "t4", "old", "child", "nocg", "trend"] + [f"R{j+1}" for j in range(1, 6)]
f = poisson(np.array([Y[k] for k in ks], float), X, np.array([N[k] for k in ks]) * 7 / 365, names)
se = np.sqrt(np.diag(f.cov))
for nm, b, s in zip(names, f.coef, se): print(f"{nm:6s} {b:+.3f} ± {1.645*s:.3f}  exp {np.exp(b):.3f}")
