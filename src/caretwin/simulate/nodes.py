"""Multi-server capacity nodes (beds): continuous time inside the engine's daily step.

A node has c servers (beds) and a first-come-first-served queue whose customers give up
when their patience runs out (a SNF bed not found within the delayed-discharge limit, an
ED board that ends in admission). Patience is the node's fixed limit unless the caller
gives each arrival its own (drawn from any distribution, e.g. exponential). Inside a day,
arrivals (at fractional times), departures and abandonments are processed in time order,
so with exponential inter-arrival and service times a node is exactly an M/M/c+D queue
(fixed patience) or an M/M/c+M queue (Erlang-A, exponential patience); the engine only
looks at it once a day.
"""

from __future__ import annotations

import numba as nb
import numpy as np

INF = np.inf


class Nodes:
    """State of many nodes: servers' busy-until times and occupants, and a ring-buffer queue each."""

    def __init__(self, capacity: np.ndarray, patience: np.ndarray, max_servers: int | None = None,
                 max_queue: int = 4096):
        n = len(capacity)
        self.c = np.asarray(capacity, np.int64).copy()
        cmax = int(max(1, self.c.max(initial=1) * 2 + 16 if max_servers is None else max_servers))
        self.busy_until = np.full((n, cmax), -INF)  # idle servers have been free since forever
        self.occupant = np.full((n, cmax), -1, np.int64)
        self.started = np.zeros((n, cmax))
        self.patience = np.asarray(patience, np.float64)
        self.q_member = np.full((n, max_queue), -1, np.int64)
        self.q_arrival = np.zeros((n, max_queue))
        self.q_service = np.zeros((n, max_queue))
        self.q_deadline = np.zeros((n, max_queue))
        self.q_head = np.zeros(n, np.int64)
        self.q_len = np.zeros(n, np.int64)

    def set_capacity(self, node: int, servers: int) -> None:
        if servers > self.busy_until.shape[1]:
            grow = servers - self.busy_until.shape[1] + 16
            pad = lambda a, v: np.concatenate([a, np.full((a.shape[0], grow), v, a.dtype)], axis=1)
            self.busy_until, self.occupant, self.started = pad(self.busy_until, -INF), pad(self.occupant, -1), pad(self.started, 0.0)
        self.c[node] = servers

    def advance(self, node: np.ndarray, member: np.ndarray, t_arrival: np.ndarray, service: np.ndarray,
                t_end: float, patience: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """Add arrivals and run every node up to t_end. `patience`, if given, is each arrival's own
        (else the node's fixed limit).

        Returns events as parallel arrays (kind, node, member, time, wait): kind 0 = service
        start, 1 = service end, 2 = gave up waiting.
        """
        order = np.lexsort((t_arrival, node))
        own = self.patience[node] if patience is None else np.asarray(patience, np.float64)
        out = _advance(self.c, self.busy_until, self.occupant, self.started, self.q_member,
                       self.q_arrival, self.q_service, self.q_deadline, self.q_head, self.q_len,
                       node[order].astype(np.int64), member[order].astype(np.int64), t_arrival[order],
                       service[order], (t_arrival + own)[order], float(t_end) - 1.0, float(t_end))
        return out

    def occupancy(self) -> np.ndarray:
        """Busy servers per node right now (occupants still being served)."""
        return (self.occupant >= 0).sum(axis=1)

    def queue_length(self) -> np.ndarray:
        return self.q_len.copy()


@nb.njit(cache=True)
def _advance(c, busy_until, occupant, started, q_member, q_arrival, q_service, q_deadline, q_head, q_len,
             a_node, a_member, a_time, a_service, a_deadline, t_start, t_end):
    n_nodes = len(c)
    qmax = q_member.shape[1]
    cap = 64 + 4 * len(a_node)
    kind = np.empty(cap, np.int8)
    e_node = np.empty(cap, np.int64)
    e_member = np.empty(cap, np.int64)
    e_time = np.empty(cap)
    e_wait = np.empty(cap)
    ne = 0
    a = 0
    for k in range(n_nodes):
        a_lo = a
        while a < len(a_node) and a_node[a] == k:
            a += 1
        nxt = a_lo
        if ne + c[k] + 4 >= cap:
            cap = 2 * cap + c[k]
            kind = _grow_i1(kind, cap)
            e_node = _grow_i8(e_node, cap)
            e_member = _grow_i8(e_member, cap)
            e_time = _grow_f8(e_time, cap)
            e_wait = _grow_f8(e_wait, cap)
        # servers added since yesterday take waiting customers at the start of the day
        ne = _serve(k, t_start, c, busy_until, occupant, started, q_member, q_arrival, q_service, q_head, q_len,
                    kind, e_node, e_member, e_time, e_wait, ne)
        while True:
            # next departure among busy servers
            dep_t = np.inf
            dep_s = -1
            for s in range(busy_until.shape[1]):
                if occupant[k, s] >= 0 and busy_until[k, s] < dep_t:
                    dep_t = busy_until[k, s]
                    dep_s = s
            arr_t = a_time[nxt] if nxt < a else np.inf
            # the waiting customer whose patience runs out first (the head, when patience is fixed)
            ab_t = np.inf
            ab_j = -1
            for j in range(q_len[k]):
                h = (q_head[k] + j) % qmax
                if q_deadline[k, h] < ab_t:
                    ab_t = q_deadline[k, h]
                    ab_j = j
            t = min(dep_t, arr_t, ab_t)
            if t >= t_end:
                break
            if ne + 8 >= cap:
                cap *= 2
                kind = _grow_i1(kind, cap)
                e_node = _grow_i8(e_node, cap)
                e_member = _grow_i8(e_member, cap)
                e_time = _grow_f8(e_time, cap)
                e_wait = _grow_f8(e_wait, cap)
            if ab_t == t:
                h = (q_head[k] + ab_j) % qmax
                kind[ne] = 2; e_node[ne] = k; e_member[ne] = q_member[k, h]; e_time[ne] = t
                e_wait[ne] = t - q_arrival[k, h]
                ne += 1
                # close the gap: everyone behind moves up one place
                for j in range(ab_j, q_len[k] - 1):
                    a_ = (q_head[k] + j) % qmax
                    b_ = (a_ + 1) % qmax
                    q_member[k, a_] = q_member[k, b_]
                    q_arrival[k, a_] = q_arrival[k, b_]
                    q_service[k, a_] = q_service[k, b_]
                    q_deadline[k, a_] = q_deadline[k, b_]
                q_len[k] -= 1
                continue
            if dep_t == t:
                kind[ne] = 1; e_node[ne] = k; e_member[ne] = occupant[k, dep_s]; e_time[ne] = t
                e_wait[ne] = t - started[k, dep_s]
                ne += 1
                occupant[k, dep_s] = -1
                busy_until[k, dep_s] = t
                ne = _serve(k, t, c, busy_until, occupant, started, q_member, q_arrival, q_service, q_head, q_len,
                            kind, e_node, e_member, e_time, e_wait, ne)
                continue
            # an arrival joins the queue; service starts below when a server is free
            tail = (q_head[k] + q_len[k]) % qmax
            if q_len[k] >= qmax:
                raise RuntimeError("node queue overflow: raise max_queue")
            q_member[k, tail] = a_member[nxt]
            q_arrival[k, tail] = arr_t
            q_service[k, tail] = a_service[nxt]
            q_deadline[k, tail] = a_deadline[nxt]
            q_len[k] += 1
            nxt += 1
            ne = _serve(k, t, c, busy_until, occupant, started, q_member, q_arrival, q_service, q_head, q_len,
                        kind, e_node, e_member, e_time, e_wait, ne)
    return kind[:ne], e_node[:ne], e_member[:ne], e_time[:ne], e_wait[:ne]


@nb.njit(cache=True)
def _serve(k, t, c, busy_until, occupant, started, q_member, q_arrival, q_service, q_head, q_len,
           kind, e_node, e_member, e_time, e_wait, ne):
    qmax = q_member.shape[1]
    # servers beyond c (beds removed while occupied) finish their stays but take no one new
    busy = 0
    for s in range(occupant.shape[1]):
        if occupant[k, s] >= 0:
            busy += 1
    for s in range(occupant.shape[1]):
        if q_len[k] == 0 or busy >= c[k]:
            break
        if occupant[k, s] < 0:
            busy += 1
            h = q_head[k]
            occupant[k, s] = q_member[k, h]
            started[k, s] = t
            busy_until[k, s] = t + q_service[k, h]
            kind[ne] = 0; e_node[ne] = k; e_member[ne] = q_member[k, h]; e_time[ne] = t; e_wait[ne] = t - q_arrival[k, h]
            ne += 1
            q_head[k] = (h + 1) % qmax
            q_len[k] -= 1
    return ne


@nb.njit(cache=True)
def _grow_i1(a, n):
    b = np.empty(n, a.dtype); b[: len(a)] = a
    return b


@nb.njit(cache=True)
def _grow_i8(a, n):
    b = np.empty(n, a.dtype); b[: len(a)] = a
    return b


@nb.njit(cache=True)
def _grow_f8(a, n):
    b = np.empty(n, a.dtype); b[: len(a)] = a
    return b
