"""Compiled loops (numba) behind :func:`tracework.builder.cursor.cursor_segments`.

One pass over the sessionized rows finds the pointer rows (moves, button
downs and ups that are not excluded), the held-button depth, the segments
and what followed each row; a second pass walks the segments, session by
session in the order of the output (session string, then time), and
computes every feature of a segment from its slice of moves. The numbers
are those of the Polars expressions this replaced
(:func:`tracework.builder.reference.reference_cursor_segments`), to the
bit: the running path length is the same global running sum, and a
segment's path length is summed the way Polars sums a float column
(:func:`polars_sum`).
"""

from __future__ import annotations

import numba
import numpy as np

# ends_with codes (see ENDS in cursor.py).
END_CLICK, END_REST, END_DRAG = 0, 1, 2

# Polars' float sum (polars-compute float_sum.rs): the first n % 128 values
# summed in order, the rest in blocks of 128, each block in 16 lanes folded
# pairwise, blocks combined by recursive halving; then main + rest.
_BLOCK = 128
_LANES = 16
_PER_NS = 1.0 / 1e9


@numba.njit(cache=True, nogil=True)
def _block_sum(a: np.ndarray, s: int) -> float:
    v = np.zeros(_LANES)
    for c in range(_BLOCK // _LANES):
        for j in range(_LANES):
            v[j] = v[j] + a[s + c * _LANES + j]
    w = _LANES
    while w > 4:
        h = w // 2
        for j in range(h):
            v[j] = v[j] + v[h + j]
        w = h
    return (v[0] + v[2]) + (v[1] + v[3])


@numba.njit(cache=True, nogil=True)
def _pairwise_sum(a: np.ndarray, s: int, n: int) -> float:
    if n == _BLOCK:
        return _block_sum(a, s)
    left = (n // _BLOCK // 2) * _BLOCK
    return _pairwise_sum(a, s, left) + _pairwise_sum(a, s + left, n - left)


@numba.njit(cache=True, nogil=True)
def polars_sum(a: np.ndarray, s: int, e: int) -> float:
    """``a[s:e].sum()`` as Polars computes it (no nulls)."""
    n = e - s
    rem = n % _BLOCK
    main = 0.0
    if n > rem:
        main = _pairwise_sum(a, s + rem, n - rem)
    rest = -0.0
    for i in range(s, s + rem):
        rest += a[i]
    return main + rest


@numba.njit(cache=True, nogil=True)
def cursor_kernel(
    typ: np.ndarray,
    excluded: np.ndarray,
    sid: np.ndarray,
    sid_rank: np.ndarray,
    ws: np.ndarray,
    seq: np.ndarray,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    xy_ok: np.ndarray,
    c_move: int,
    c_down: int,
    c_up: int,
    rest_ns: int,
    win_ns: int,
    ratio: float,
):
    """Segments of the rows (see cursor.py for what each output means).

    ``sid_rank[s]`` is the output position of session id ``s`` (sessions
    sorted by their string). Returns ``ok`` (False: a precondition failed,
    use the reference: a pointer row without x or y (``xy_ok``), a
    session's seq not increasing, a segment's time going backwards), then per output segment: first move row, last move
    row, end code, start/end x/y, start/end ns, seq first/last, path length,
    peak speed and whether there is one, the largest overshoot and whether
    there is one, sub-movements, points, segment index; then per path
    point (segments in output order): x, y, t_ms, and the path offsets."""
    n = typ.shape[0]
    ok = True
    # Pass 1, frame order, over the pointer rows (moves, button downs and
    # ups not excluded): held-button depth, segment starts, what came after
    # each move (a button-down within rest_ns makes a click), and each
    # move's step, running path length and windowed speed. Per-move arrays
    # are sized for every row (np.empty: pages untouched are free).
    mrow = np.empty(n, np.int64)  # move -> row (its x, y, t are read through it)
    mclick = np.zeros(n, np.bool_)
    step = np.empty(n)
    cum = np.empty(n)
    speed = np.empty(n)  # NaN: no speed (the reference's null; a speed is never NaN)
    seg_start = np.empty(n + 1, np.int64)  # segment -> its first move
    seg_held = np.empty(n + 1, np.bool_)  # a button held at its first move
    seg_peak = np.empty(n + 1)
    seg_peak_ok = np.empty(n + 1, np.bool_)
    nm = 0
    nseg = 0
    p = -1  # previous pointer row
    fresh = False  # a segment started since the previous move
    bs = 0
    bmin = 0
    g = 0.0  # running path length over all moves (the reference's global cum_sum)
    base = 0.0
    back = 0
    t0 = 0
    for i in range(n):
        tp = typ[i]
        if excluded[i] or not (tp == c_move or tp == c_down or tp == c_up):
            continue
        if not xy_ok[i]:
            ok = False  # a pointer event without coordinates
        if p < 0 or sid[p] != sid[i]:
            bs = 0
            bmin = 0
        elif seq[i] <= seq[p]:
            ok = False
        if tp == c_down:
            bs += 1
        elif tp == c_up:
            bs -= 1
        bmin = min(bmin, bs)
        held = bs - min(bmin, 0)
        if p < 0 or sid[p] != sid[i] or ws[p] != ws[i] or typ[p] != c_move or t[i] - t[p] > rest_ns:
            fresh = True
        if p >= 0 and typ[p] == c_move:
            # Only a press in the same session and work session follows it:
            # the next session's rows (another clock) come right after.
            mclick[nm - 1] = tp == c_down and sid[p] == sid[i] and ws[p] == ws[i] and t[i] - t[p] <= rest_ns
        p = i
        if tp != c_move:
            continue
        a = nm
        nm += 1
        mrow[a] = i
        ti = t[i]
        if fresh or a == 0:
            seg_start[nseg] = a
            seg_held[nseg] = held > 0
            seg_peak[nseg] = 0.0
            seg_peak_ok[nseg] = False
            nseg += 1
            fresh = False
            step[a] = 0.0
            g = g + 0.0
            cum[a] = g
            base = cum[a] - step[a]
            back = a - 1
            t0 = ti
        else:
            ip = mrow[a - 1]
            dx = np.float64(x[i]) - np.float64(x[ip])
            dy = np.float64(y[i]) - np.float64(y[ip])
            step[a] = np.sqrt(dx * dx + dy * dy)
            g = g + step[a]
            cum[a] = g
            if ti < t[ip]:
                ok = False
        cum[a] = cum[a] - base
        # Speed over the trailing window: path length now minus at the last
        # sample no later than t - window (none: from the segment's start).
        a0 = seg_start[nseg - 1]
        while back + 1 <= a and t[mrow[back + 1]] <= ti - win_ns:
            back += 1
        cb = cum[back] if back >= a0 else 0.0
        el = min(win_ns, ti - t0)
        if el > 0:
            # Polars divides by a scalar as a product with its reciprocal.
            v = (cum[a] - cb) / (el * _PER_NS)
            speed[a] = v
            if not seg_peak_ok[nseg - 1] or v > seg_peak[nseg - 1]:
                seg_peak[nseg - 1] = v
                seg_peak_ok[nseg - 1] = True
        else:
            speed[a] = np.nan
    seg_start[nseg] = nm
    # Segment order of the output: by session rank, stable (within a
    # session, segments are in time order already).
    nsess = sid_rank.shape[0]
    count = np.zeros(nsess + 1, np.int64)
    for s in range(nseg):
        count[sid_rank[sid[mrow[seg_start[s]]]] + 1] += 1
    for r in range(nsess):
        count[r + 1] += count[r]
    order = np.empty(nseg, np.int64)
    for s in range(nseg):
        r = sid_rank[sid[mrow[seg_start[s]]]]
        order[count[r]] = s
        count[r] += 1

    first_row = np.empty(nseg, np.int64)
    last_row = np.empty(nseg, np.int64)
    ends = np.empty(nseg, np.int8)
    sx = np.empty(nseg, np.int64)
    sy = np.empty(nseg, np.int64)
    ex = np.empty(nseg, np.int64)
    ey = np.empty(nseg, np.int64)
    t_first = np.empty(nseg, np.int64)
    t_last = np.empty(nseg, np.int64)
    seq_first = np.empty(nseg, np.int64)
    seq_last = np.empty(nseg, np.int64)
    path_len = np.empty(nseg)
    peak = np.empty(nseg)
    peak_ok = np.empty(nseg, np.bool_)
    beyond = np.empty(nseg)
    beyond_ok = np.empty(nseg, np.bool_)
    subm = np.empty(nseg, np.uint32)
    points = np.empty(nseg, np.uint32)
    seg_index = np.empty(nseg, np.int64)
    px = np.empty(nm, np.int32)
    py = np.empty(nm, np.int32)
    pt = np.empty(nm, np.int32)
    offsets = np.zeros(nseg + 1, np.int32)
    out = 0
    npts = 0
    prev_sid = -1
    index = 0
    for o in range(nseg):
        s = order[o]
        a0, a1 = seg_start[s], seg_start[s + 1]
        if a1 - a0 < 2:
            continue  # a single sample is not a movement
        i0 = mrow[a0]
        i1 = mrow[a1 - 1]
        t0 = t[i0]
        pk = seg_peak[s]
        pk_ok = seg_peak_ok[s]
        tmin, tmax = t0, t0
        qmin, qmax = seq[i0], seq[i0]
        for a in range(a0, a1):
            ti = t[mrow[a]]
            tmin = min(tmin, ti)
            tmax = max(tmax, ti)
            q = seq[mrow[a]]
            qmin = min(qmin, q)
            qmax = max(qmax, q)
        # Sub-movements: rises of the speed through ratio * peak.
        sm = 0
        if pk_ok and pk > 0:
            lim = ratio * pk
            prev_above = False
            for a in range(a0, a1):
                v = speed[a]
                above = (0.0 if np.isnan(v) else v) >= lim
                if above and not prev_above:
                    sm += 1
                prev_above = above
        x0, y0 = np.float64(x[i0]), np.float64(y[i0])
        x1, y1 = np.float64(x[i1]), np.float64(y[i1])
        ddx = x1 - x0
        ddy = y1 - y0
        dist = np.sqrt(ddx * ddx + ddy * ddy)
        by = 0.0
        by_ok = False
        if dist > 0:
            for a in range(a0, a1):
                i = mrow[a]
                b = ((np.float64(x[i]) - x0) * ddx + (np.float64(y[i]) - y0) * ddy) / dist - dist
                if not by_ok or b > by:
                    by = b
                    by_ok = True
        cur_sid = sid[i0]
        if cur_sid != prev_sid:
            index = 0
            prev_sid = cur_sid
        first_row[out] = i0
        last_row[out] = i1
        if seg_held[s]:
            ends[out] = END_DRAG
        elif mclick[a1 - 1]:
            ends[out] = END_CLICK
        else:
            ends[out] = END_REST
        sx[out] = x[i0]
        sy[out] = y[i0]
        ex[out] = x[i1]
        ey[out] = y[i1]
        t_first[out] = tmin
        t_last[out] = tmax
        seq_first[out] = qmin
        seq_last[out] = qmax
        path_len[out] = polars_sum(step, a0, a1)
        peak[out] = pk
        peak_ok[out] = pk_ok
        beyond[out] = by
        beyond_ok[out] = by_ok
        subm[out] = sm
        points[out] = a1 - a0
        seg_index[out] = index
        index += 1
        for a in range(a0, a1):
            i = mrow[a]
            px[npts] = x[i]
            py[npts] = y[i]
            pt[npts] = (t[i] - t0) // 1_000_000
            npts += 1
        out += 1
        offsets[out] = npts
    return (
        ok,
        first_row[:out],
        last_row[:out],
        ends[:out],
        sx[:out],
        sy[:out],
        ex[:out],
        ey[:out],
        t_first[:out],
        t_last[:out],
        seq_first[:out],
        seq_last[:out],
        path_len[:out],
        peak[:out],
        peak_ok[:out],
        beyond[:out],
        beyond_ok[:out],
        subm[:out],
        points[:out],
        seg_index[:out],
        px[:npts],
        py[:npts],
        pt[:npts],
        offsets[: out + 1],
    )
