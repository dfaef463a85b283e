"""Small-cell suppression: counts from 1 to 10 are never shown, nor derivable from what is shown.

Primary suppression hides every cell whose count rounds to 1-10 (zero may show). When the cells
of a breakdown add up to a total that is shown, a single hidden cell could be recovered by
subtraction, so complementary suppression also hides the smallest other cell.
"""

from __future__ import annotations

import numpy as np

SMALL_CELL_MAX = 10


def small(counts: np.ndarray, limit: int = SMALL_CELL_MAX) -> np.ndarray:
    """Cells whose count rounds to 1..limit."""
    r = np.rint(np.asarray(counts, dtype=np.float64))
    return (r >= 1) & (r <= limit)


def suppress_breakdown(*counts: np.ndarray, limit: int = SMALL_CELL_MAX) -> np.ndarray:
    """Mask of the cells to hide in one breakdown whose total is shown (primary and complementary).

    Several count vectors may describe the same cells (e.g. people, and events among them): a cell
    is hidden when any of its counts is small; the complementary cell is the one with the fewest
    of the first count.
    """
    first = np.asarray(counts[0], dtype=np.float64)
    hide = np.logical_or.reduce([small(c, limit) for c in counts])
    if hide.sum() == 1 and len(first) > 1:
        others = np.flatnonzero(~hide)
        hide[others[np.argmin(first[others])]] = True
    return hide


def suppress_table(counts: np.ndarray, limit: int = SMALL_CELL_MAX) -> np.ndarray:
    """Mask of the cells to hide in a two-way table shown with its row and column totals (and so with any
    percentage of a total): primary suppression, then, until nothing changes, in every row and column whose
    hidden cells add up to 1-`limit` (one hidden cell, or several small ones), also the smallest shown cell
    with a count. Subtracting the shown cells from a total then gives no count from 1 to `limit`."""
    c = np.rint(np.asarray(counts, dtype=np.float64))
    if c.ndim == 1:
        c = c[None, :]
    hide = _complement(c, small(c, limit), lambda line, mask: 1 <= line[mask].sum() <= limit
                       or (mask.sum() == 1 and line[mask].sum() >= 1))
    return hide.reshape(np.shape(counts))


def _complement(values: np.ndarray, hide: np.ndarray, recoverable) -> np.ndarray:
    """Until nothing changes, in every row and column with hidden values that `recoverable(line, mask)` says could
    be worked out, also hide the smallest shown value with a count."""
    changed = True
    while changed:
        changed = False
        for lines, view in ((values, hide), (values.T, hide.T)):
            for i in range(lines.shape[0]):
                line, mask = lines[i], view[i]
                shown = np.flatnonzero(~mask & (line > 0))
                if mask.any() and len(shown) and recoverable(line, mask):
                    view[i, shown[np.argmin(line[shown])]] = True
                    changed = True
    return hide


def with_margins(counts: np.ndarray) -> np.ndarray:
    """A two-way table with its row totals as a last column, its column totals as a last row, the total in the corner."""
    c = np.asarray(counts, dtype=np.float64)
    t = np.zeros((c.shape[0] + 1, c.shape[1] + 1))
    t[:-1, :-1], t[:-1, -1], t[-1, :-1], t[-1, -1] = c, c.sum(axis=1), c.sum(axis=0), c.sum()
    return t


def suppress_with_margins(counts: np.ndarray, also: np.ndarray | None = None,
                          limit: int = SMALL_CELL_MAX) -> np.ndarray:
    """Mask over a two-way table extended by its margins, [rows + 1, columns + 1] (the last column the row
    totals, the last row the column totals, the corner the grand total), of the values to hide when margins are
    shown too: those that are 1-`limit` or marked in `also` (e.g. values a related table would give away by
    difference), then, until nothing changes, one more value in every row or column of the extended table that
    would let a hidden value be recovered: the only hidden one in its line (a total is the sum of its cells, a
    cell the total less the others), or hidden cells whose shown total tells that they add up to 1-`limit`."""
    t = with_margins(np.rint(np.asarray(counts, dtype=np.float64)))
    hide = small(t, limit) | (np.zeros(t.shape, bool) if also is None else also)
    return _complement(t, hide, lambda line, mask: (mask.sum() == 1 and line[mask].sum() >= 1)
                       or (not mask[-1] and 1 <= line[:-1][mask[:-1]].sum() <= limit))
