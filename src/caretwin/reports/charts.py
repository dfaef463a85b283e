"""Charts as inline SVG: drawn by our own code, so a report needs no scripts, fonts or network."""

from __future__ import annotations

import math
from html import escape

# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def _ticks(v: float) -> tuple[float, float]:
    """(axis top, step): a step of 1, 2 or 5 times a power of ten giving three to six intervals above `v`."""
    if v <= 0 or not math.isfinite(v):
        return 1.0, 0.25
    mag = 10 ** math.floor(math.log10(v))
    for step in (0.1, 0.2, 0.5, 1, 2, 5):
        step *= mag
        if math.ceil(v / step - 1e-9) <= 6:
            return step * math.ceil(v / step - 1e-9), step
    return 10 * mag, 2 * mag


def _tick(v: float, percent: bool, step: float) -> str:
    """A tick label with as many decimals as the step needs, so no two ticks read the same."""
    if percent:
        v, step = v * 100, step * 100
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    if not percent and abs(v) >= 1e6 and step >= 1e5:
        return f"{v / 1e6:.{max(0, 6 - int(math.log10(step)))}f}M".replace(".0M", "M")
    if not percent and abs(v) >= 1e3 and step >= 100:
        return f"{v / 1e3:.{0 if step >= 1e3 else 1}f}k"
    return f"{v:.{decimals}f}" + ("%" if percent else "")


def fan_chart(title: str, series: list[tuple[str, list[list[float]]]], *, percent: bool = False,
              width: int = 640, height: int = 240) -> str:
    """Weekly quantile bands (5-95% light, 25-75% darker, median line) of one measure for several runs.

    `series` is [(run name, [q05, q25, q50, q75, q95] each a list by week)].
    """
    left, right, top, bottom = 56, 12, 28, 34
    pw, ph = width - left - right, height - top - bottom
    weeks = len(series[0][1][0])
    ymax, step = _ticks(max(max(b[4]) for _, b in series))
    x = lambda w: left + (pw * w / max(weeks - 1, 1))  # noqa: E731
    y = lambda v: top + ph - ph * min(v, ymax) / ymax  # noqa: E731
    parts = [f'<svg role="img" aria-labelledby="t-{id(series)}" viewBox="0 0 {width} {height}" '
             f'width="100%" class="chart"><title id="t-{id(series)}">{escape(title)}</title>',
             f'<text x="{left}" y="16" class="ct">{escape(title)}</text>']
    for i in range(round(ymax / step) + 1):
        v = step * i
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" class="ax">{_tick(v, percent, step)}</text>')
    for w in range(0, weeks, max(1, weeks // 6)):
        parts.append(f'<text x="{x(w):.1f}" y="{top + ph + 16}" text-anchor="middle" class="ax">{w + 1}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle" class="ax">week</text>')
    for j, (name, b) in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        for lo, hi, op in ((0, 4, 0.12), (1, 3, 0.25)):
            pts = [f"{x(w):.1f},{y(b[hi][w]):.1f}" for w in range(weeks)]
            pts += [f"{x(w):.1f},{y(b[lo][w]):.1f}" for w in reversed(range(weeks))]
            parts.append(f'<polygon points="{" ".join(pts)}" fill="{colour}" fill-opacity="{op}" stroke="none"/>')
        line = " ".join(f"{x(w):.1f},{y(b[2][w]):.1f}" for w in range(weeks))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
    lx = left + 8
    for j, (name, _) in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        parts.append(f'<rect x="{lx}" y="{top + 4}" width="12" height="4" fill="{colour}"/>'
                     f'<text x="{lx + 16}" y="{top + 10}" class="lg">{escape(name)}</text>')
        lx += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def _heat(p: float) -> str:
    """White (0) to deep red (1), through amber."""
    p = min(max(p, 0.0), 1.0)
    stops = ((0.0, (247, 247, 247)), (0.3, (253, 204, 138)), (0.6, (239, 101, 72)), (1.0, (179, 0, 0)))
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if p <= b:
            t = (p - a) / (b - a)
            return "#%02x%02x%02x" % tuple(round(u + (v - u) * t) for u, v in zip(ca, cb))
    return "#b30000"


def tile_grid(title: str, tiles: list[tuple[str, float | None, str]], *, size: int = 92,
              missing: str = "none") -> str:
    """Regions as tiles coloured by a probability, labelled with the region and the value (text, not colour alone);
    a value of None is a grey tile saying `missing` (the region has nothing to measure)."""
    cols = max(1, math.ceil(math.sqrt(len(tiles))))
    rows = math.ceil(len(tiles) / cols)
    width, height = cols * (size + 6) + 6, rows * (size + 6) + 30
    tid = f"g-{id(tiles)}"
    parts = [f'<svg role="img" aria-labelledby="{tid}" viewBox="0 0 {width} {height}" width="{width}" class="tiles">'
             f'<title id="{tid}">{escape(title)}</title><text x="6" y="18" class="ct">{escape(title)}</text>']
    for i, (label, p, sub) in enumerate(tiles):
        cx, cy = 6 + (i % cols) * (size + 6), 26 + (i // cols) * (size + 6)
        ink = "#ffffff" if p is not None and p > 0.55 else "#111111"
        fill, value = ("#eeeeee", escape(missing)) if p is None else (_heat(p), f"{p * 100:.0f}%")
        parts.append(f'<rect x="{cx}" y="{cy}" width="{size}" height="{size}" rx="6" fill="{fill}" stroke="#888"/>'
                     f'<text x="{cx + size / 2}" y="{cy + 26}" text-anchor="middle" class="tl" fill="{ink}">{escape(label)}</text>'
                     f'<text x="{cx + size / 2}" y="{cy + 54}" text-anchor="middle" class="tv" fill="{ink}">{value}</text>'
                     f'<text x="{cx + size / 2}" y="{cy + 74}" text-anchor="middle" class="ts" fill="{ink}">{escape(sub)}</text>')
    parts.append("</svg>")
    return "".join(parts)
