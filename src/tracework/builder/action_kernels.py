"""Compiled loops behind :func:`tracework.builder.actions.reduce_actions`.

The reduction of raw events to actions is a state machine over each capture
session's rows in capture order (is a button held, which typing run is open,
what was the last unit), plus per-action aggregates. Written as Polars window
expressions it took some forty passes over the chunk and a sort of every row;
here it is three linear loops over NumPy views of the columns, compiled with
numba (``cache=True``: compiled once per machine, then loaded from the cache):

1. :func:`row_keys` walks the rows forward and backward and gives every row
   its action key ``akey`` (the sort key of the Polars version:
   ``3*aid`` a move leading to unit ``aid``, ``3*aid+1`` the unit's own rows,
   ``3*aid+2`` motion trailing it, ``-1`` a session of only motion, ``DROP``
   a row in no action), plus the per-row facts the aggregates need;
2. a counting sort by ``akey`` (stable, linear) gives each action's rows as
   one slice, in capture order;
3. :func:`actions` aggregates each slice, applies the filters and merges
   click chains, and returns one entry per output action: numeric columns,
   validity masks, and offsets into token and path-point arrays;
4. :func:`strings` writes texts and PyAutoGUI commands as Arrow string
   buffers, :func:`key_lists` the ``keys`` lists as vocabulary indices; names
   are gathered from small vocabularies in Polars.

The per-row arrays are kept narrow (codes, flag bits, row numbers instead of
copied values): the passes are bound by memory traffic, not arithmetic.

Every rule mirrors the Polars implementation kept as
:func:`tracework.builder.actions.reference_reduce_actions` (the tests compare
the two); comments name the rule where the loop form is not obvious. Codes:
``ucat``/``kcat`` use the order of ``actions.CATEGORY``; event types are
remapped to the ``T_*`` constants through a look-up table.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..events import MOD_ALT, MOD_ALTGR, MOD_CTRL, MOD_META, MOD_SHIFT

# Event types (remapped from the Enum's physical codes).
T_OTHER, T_DOWN, T_UP, T_MOVE, T_SCROLL, T_KEY_DOWN, T_KEY_UP, T_BREAK = 0, 1, 2, 3, 4, 5, 6, 7
BREAK_TYPES = ("focus_change", "idle", "active", "pause", "resume", "session_start", "session_end")
# Key / unit categories, in the order of actions.CATEGORY (ucat max = that order).
C_TYPE, C_BACKSPACE, C_KEY, C_HOTKEY, C_MODIFIER, C_PRESS, C_SCROLL, C_BREAK = 0, 1, 2, 3, 4, 5, 6, 7
# Output action codes (index into ACTION_NAMES).
ACTION_NAMES = ("move", "drag", "right_click", "middle_click", "double_click", "triple_click", "click", "scroll", "type", "press", "hotkey")
A_MOVE, A_DRAG, A_RIGHT, A_MIDDLE, A_DOUBLE, A_TRIPLE, A_CLICK, A_SCROLL, A_TYPE, A_PRESS, A_HOTKEY = range(11)
SCROLL_NAMES = ("up", "down", "right", "left")
# Modifier names in a hotkey's keys, in this order.
MOD_WORDS = ("ctrl", "alt", "win", "shift", "altgr")
MOD_BITS = np.array([MOD_CTRL, MOD_ALT, MOD_META, MOD_SHIFT, MOD_ALTGR], np.int64)
DROP = np.int64(-2)


# Per-row flags (bits of ``flags``).
F_NEW, F_FREE, F_PRESS, F_SURVIVES, F_MOVED, F_G1, F_TOKEN = 1, 2, 4, 8, 16, 32, 64


@numba.njit(cache=True, nogil=True)
def row_keys(tcode, excluded, sid, seq, ws, task, t, x, xv, y, yv, dx, dxv, dy, dyv, kcat, keyc, scroll_gap, drag_px):
    """Per row: ``akey`` (``DROP`` for rows in no action) and the per-row facts
    the aggregation reads. Inputs are full-length columns of the sessionized
    frame; excluded rows, key-ups and rows of unknown type are skipped (the
    Polars version filters them out first).

    Returns (akey, max aid, ucat, flags, bxs, bys, lmxs, lmys, monotone):
    ``ucat`` the unit category (-1: not a unit); ``flags`` the ``F_*`` bits
    (unit row that starts an action, free motion, part of a press, typed
    token still present at the end of its run, a press's row more than
    ``drag_px`` from where the press started); ``bxs``/``bys`` the row whose
    x/y is where the pointer was before the row (-1: none); ``lmxs``/``lmys``
    the last motion row with an x/y; ``monotone`` whether seq,
    time, work session and task never decrease within a session. Values by row number keep
    these arrays narrow: the chunk's memory traffic is most of the cost."""
    n = tcode.shape[0]
    akey = np.full(n, DROP, np.int32)
    ucat = np.empty(n, np.int8)
    flags = np.zeros(n, np.uint8)
    bxs = np.empty(n, np.int32)
    bys = np.empty(n, np.int32)
    lmxs = np.empty(n, np.int32)
    lmys = np.empty(n, np.int32)
    depth = np.empty(n, np.int32)  # clamped text depth (first pass)

    have_last = False
    last_sid = 0
    held = 0
    lx = -1  # last row of the session with an x (or y)
    ly = -1
    aid_fwd = -1
    # Global forward fills (across sessions, as in the Polars version).
    gfx = -1
    gfy = -1
    glmx = -1
    glmy = -1
    # "The previous unit row" state: the last non-null value among earlier unit rows.
    p_any = False
    p_sid = 0
    p_ws = 0
    p_task = 0
    p_u1 = -1
    p_u2 = -1
    p_key = -1
    p_sdir = 0
    p_sdirv = False
    p_t = 0
    aid1 = 0
    aid2 = 0
    d = 0  # clamped text depth in the current first-pass group
    monotone = True
    l_seq = 0
    l_t = 0
    l_ws = 0
    l_task = 0

    for i in range(n):
        tc = tcode[i]
        if tc < 0 or tc == T_KEY_UP or excluded[i]:
            continue
        s = sid[i]
        if not have_last or s != last_sid:
            held = 0
            lx = -1
            ly = -1
            aid_fwd = -1
        elif seq[i] < l_seq or t[i] < l_t or ws[i] < l_ws or task[i] < l_task:
            monotone = False
        l_seq = seq[i]
        l_t = t[i]
        l_ws = ws[i]
        l_task = task[i]
        have_last = True
        last_sid = s
        # Button depth, clamped at zero (a button-up with nothing held does nothing).
        if tc == T_DOWN:
            held += 1
        elif tc == T_UP:
            held = held - 1 if held > 0 else 0
        ip = tc == T_UP or (tc == T_MOVE and held > 0)
        # Pointer position before the row (last known in the session), else the row's own.
        bxs[i] = lx if lx >= 0 else (i if xv[i] else -1)
        bys[i] = ly if ly >= 0 else (i if yv[i] else -1)
        if xv[i]:
            lx = i
        if yv[i]:
            ly = i
        if tc == T_DOWN:
            if xv[i]:
                gfx = i
            if yv[i]:
                gfy = i
        elif tc == T_MOVE:
            if xv[i]:
                glmx = i
            if yv[i]:
                glmy = i
        lmxs[i] = glmx
        lmys[i] = glmy

        # Unit category (first pass: every backspace is part of typing).
        kc = kcat[i]
        if tc == T_DOWN:
            u1 = C_PRESS
        elif tc == T_SCROLL:
            u1 = C_SCROLL
        elif kc == C_BACKSPACE:
            u1 = C_TYPE
        elif kc == C_TYPE or kc == C_KEY or kc == C_HOTKEY:
            u1 = kc
        elif tc == T_BREAK:
            u1 = C_BREAK
        else:
            u1 = -1
        if u1 < 0:
            ucat[i] = -1
            depth[i] = d
            if ip:
                # Held motion and button-ups join the last unit of the session;
                # a press that moved further than drag_px is a drag.
                fl = F_PRESS
                if xv[i] and gfx >= 0 and yv[i] and gfy >= 0 and abs(x[i] - x[gfx]) + abs(y[i] - y[gfy]) > drag_px:
                    fl |= F_MOVED
                flags[i] = fl
                if aid_fwd >= 0:
                    akey[i] = 3 * aid_fwd + 1
            elif tc == T_MOVE:
                flags[i] = F_FREE
                akey[i] = aid_fwd  # the unit before; resolved in the backward pass
            continue

        # Scroll direction: vertical as +-2, horizontal as +-1 (null without dx/dy).
        sdirv = True
        sdir = 0
        if dyv[i] and dy[i] != 0:
            sdir = 2 if dy[i] > 0 else -2
        elif dxv[i]:
            sdir = (dx[i] > 0) - (dx[i] < 0)
        else:
            sdirv = False
        k = keyc[i]
        # Does this unit row continue the previous unit's action? Any unknown
        # (null) comparison starts a new one, as in the Polars version.
        same_ctx = p_any and s == p_sid and ws[i] == p_ws and task[i] == p_task
        cont_extra = True
        if u1 == C_KEY:
            cont_extra = k >= 0 and p_key >= 0 and k == p_key
        elif u1 == C_SCROLL:
            cont_extra = sdirv and p_sdirv and sdir == p_sdir and t[i] - p_t <= scroll_gap
        new1 = not (same_ctx and u1 == p_u1 and u1 != C_PRESS and u1 != C_HOTKEY and u1 != C_BREAK and cont_extra)
        if new1:
            aid1 += 1
            d = 0
        # Clamped depth of the typing run; a backspace on empty text underflows.
        dl = 0
        if u1 == C_TYPE:
            dl = 1 if kc == C_TYPE else -1
        under = dl < 0 and d == 0
        d = max(0, d + dl)
        depth[i] = d
        # Second pass: an underflowing backspace is a key press of its own.
        u2 = C_KEY if (u1 == C_TYPE and kc == C_BACKSPACE and under) else u1
        cont_extra2 = True
        if u2 == C_KEY:
            cont_extra2 = k >= 0 and p_key >= 0 and k == p_key
        elif u2 == C_SCROLL:
            cont_extra2 = cont_extra
        new2 = not (same_ctx and u2 == p_u2 and u2 != C_PRESS and u2 != C_HOTKEY and u2 != C_BREAK and cont_extra2)
        fl = (F_G1 if new1 else 0) | (F_TOKEN if dl > 0 else 0)
        if new2:
            aid2 += 1
            fl |= F_NEW
        flags[i] = fl
        ucat[i] = u2
        akey[i] = 3 * aid2 + 1
        aid_fwd = aid2
        p_any = True
        p_sid = s
        p_ws = ws[i]
        p_task = task[i]
        p_u1 = u1
        p_u2 = u2
        if k >= 0:
            p_key = k
        if sdirv:
            p_sdir = sdir
            p_sdirv = True
        p_t = t[i]

    # Backward: surviving tokens (no later depth in the run below theirs) and,
    # per session, the next non-break unit a free move leads to.
    have_next = False
    next_sid = 0
    nb = -1
    ncat = -1
    reset = True  # the row (going backward) ends a first-pass group
    rmin = 0
    for i in range(n - 1, -1, -1):
        tc = tcode[i]
        if tc < 0 or tc == T_KEY_UP or excluded[i]:
            continue
        s = sid[i]
        if not have_next or s != next_sid:
            nb = -1
            ncat = -1
        have_next = True
        next_sid = s
        rmin = depth[i] if reset else min(rmin, depth[i])
        fi = flags[i]
        if fi & F_TOKEN and rmin >= depth[i]:
            flags[i] = fi | F_SURVIVES
        reset = (fi & F_G1) != 0
        u = ucat[i]
        if u >= 0:
            if u != C_BREAK:
                nb = (akey[i] - 1) // 3
                ncat = u
        elif flags[i] & F_FREE:
            if nb >= 0:
                # Motion leads to the next action: part of it when that is a
                # pointer action, a move action before it otherwise.
                akey[i] = 3 * nb + 1 if (ncat == C_PRESS or ncat == C_SCROLL) else 3 * nb
            elif akey[i] >= 0:
                akey[i] = 3 * akey[i] + 2  # trailing motion after the session's last unit
            else:
                akey[i] = -1  # a session of nothing but motion
    return akey, aid2, ucat, flags, bxs, bys, lmxs, lmys, monotone


@numba.njit(cache=True, nogil=True)
def group_order(akey, max_aid):
    """Stable counting sort of the rows by ``akey`` (dropped rows left out):
    (start offset per key + 1, row order)."""
    g = 3 * max_aid + 4
    counts = np.zeros(g + 1, np.int64)
    m = 0
    for i in range(akey.shape[0]):
        if akey[i] != DROP:
            counts[akey[i] + 2] += 1
            m += 1
    for j in range(1, g + 1):
        counts[j] += counts[j - 1]
    order = np.empty(m, np.int32)
    fill = counts[:-1].copy()
    for i in range(akey.shape[0]):
        if akey[i] != DROP:
            j = akey[i] + 1
            order[fill[j]] = i
            fill[j] += 1
    return counts, order


@numba.njit(cache=True, nogil=True, error_model="numpy")
def actions(
    starts, order, tcode, sid, row, ws, task, seq, t, x, xv, y, yv, dx, dxv, dy, dyv, mods,
    focus, focusv, sw, swv, sh, shv, keyc, btnc, redc,
    ucat, flags, bxs, bys, lmxs, lmys, monotone, xy_valid,
    move_min_px, multi_click_ns, multi_click_px, right_code, middle_code,
):  # fmt: skip
    """One entry per output action, in output order (see the module doc).

    Returns (ints, valid, duration, tokens, token offsets, points, point
    validity, point offsets): ``ints`` an (I_* x actions) int64 matrix and
    ``valid`` its validity; ``tokens`` the rows whose text makes each typing
    action's text; ``points`` (x, y, t_ms) of each action's path and their
    validity (empty when ``xy_valid``: every row has x and y).

    One pass over the rows, action by action (each action's rows are one
    slice of ``order``), writes every candidate action's aggregates, tokens
    and path points; a pass over the candidates then merges click chains and
    compacts the arrays to the output actions."""
    ngroups = starts.shape[0] - 1
    n_cand = 0
    for g in range(ngroups):
        if starts[g + 1] > starts[g]:
            n_cand += 1
    ints = np.empty((N_INTS, n_cand), np.int64)  # every slot read is written first, or masked
    valid = np.zeros((N_INTS, n_cand), np.bool_)
    dur = np.empty(n_cand, np.float64)
    # Candidate facts the merge reads besides ``ints``.
    c_press = np.empty(n_cand, np.bool_)
    c_drag = np.empty(n_cand, np.bool_)
    c_down = np.empty(n_cand, np.int64)
    c_downv = np.empty(n_cand, np.bool_)
    c_ux = np.empty(n_cand, np.int64)
    c_uxv = np.empty(n_cand, np.bool_)
    c_uy = np.empty(n_cand, np.int64)
    c_uyv = np.empty(n_cand, np.bool_)
    c_free = np.empty(n_cand, np.bool_)
    c_u = np.empty(n_cand, np.int64)
    c_sid = np.empty(n_cand, np.int64)
    c_i0 = np.empty(n_cand, np.int64)  # the action's first and last row
    c_il = np.empty(n_cand, np.int64)
    tokens = np.empty(order.shape[0], np.int64)
    tok_off = np.zeros(n_cand + 1, np.int64)
    pts = np.empty((3, order.shape[0]), np.int32)
    ptsv = np.empty((2, order.shape[0] if not xy_valid else 0), np.bool_)
    pt_off = np.zeros(n_cand + 1, np.int64)
    ntok = 0
    npt = 0
    nc = 0
    for g in range(ngroups):
        a, b = starts[g], starts[g + 1]
        if a == b:
            continue
        i0 = order[a]
        il = order[b - 1]
        # Rows of one session whose seq, time, work session and task never
        # decrease (checked in row_keys; what normalize and sessionize give):
        # minima and maxima are the first and last row's, and the path's
        # zero (the earliest pointer row) is the first pointer row.
        fast = monotone and sid[i0] == sid[il]
        pt0 = 0
        ptv = False
        for j in range(a, b):
            i = order[j]
            tc = tcode[i]
            if (tc == T_MOVE or tc == T_DOWN or tc == T_UP) and (not ptv or t[i] < pt0):
                pt0 = t[i]
                ptv = True
                if fast:
                    break
        tok_start = ntok
        pt_start = npt
        u = -1
        all_free = True
        btn = -1
        pxv = False
        px = 0
        pyv = False
        py = 0
        uxv = False
        ux = 0
        uyv = False
        uy = 0
        downv = False
        down = 0
        moved = False
        end = t[il] if fast else t[i0]
        seql = seq[il] if fast else seq[i0]
        ws_m = ws[il] if fast else ws[i0]
        task_m = task[il] if fast else task[i0]
        startv = False
        start = 0
        first = t[i0]
        seqf = seq[i0]
        for j in range(a, b):
            i = order[j]
            tc = tcode[i]
            f = flags[i]
            uc = ucat[i]
            ti = t[i]
            u = max(u, uc)
            if not fast:
                end = max(end, ti)
                first = min(first, ti)
                seql = max(seql, seq[i])
                seqf = min(seqf, seq[i])
                ws_m = max(ws_m, ws[i])
                task_m = max(task_m, task[i])
            if not f & F_FREE:
                all_free = False
                if not startv or ti < start:
                    start = ti
                    startv = True
            if tc == T_MOVE or tc == T_DOWN or tc == T_UP:
                pts[0, npt] = np.int32(x[i])
                pts[1, npt] = np.int32(y[i])
                pts[2, npt] = np.int32((ti - pt0) // 1_000_000)
                if not xy_valid:
                    ptsv[0, npt] = xv[i]
                    ptsv[1, npt] = yv[i]
                npt += 1
                if tc == T_DOWN:
                    btn = max(btn, btnc[i])
                    if not downv or ti > down:
                        down = ti
                        downv = True
                elif tc == T_UP:
                    if xv[i] and (not uxv or x[i] > ux):
                        ux = x[i]
                        uxv = True
                    if yv[i] and (not uyv or y[i] > uy):
                        uy = y[i]
                        uyv = True
            if (tc == T_DOWN or tc == T_SCROLL) and f & F_NEW:
                if xv[i] and (not pxv or x[i] > px):
                    px = x[i]
                    pxv = True
                if yv[i] and (not pyv or y[i] > py):
                    py = y[i]
                    pyv = True
            if f & F_MOVED:
                moved = True
        # Facts of one kind of action, from a second look at its rows (still
        # in cache): reading them for every action was most of the memory traffic.
        key = -1
        mod = mods[i0]
        nkeys = 0
        sdy = 0
        sdx = 0
        if not all_free:
            if u == C_TYPE:
                # Text: surviving tokens; consecutive placeholders of one redacted span collapse.
                last_red = -1
                for j in range(a, b):
                    i = order[j]
                    if ucat[i] == C_TYPE and flags[i] & F_SURVIVES:
                        r = redc[i]
                        if not (r >= 0 and r == last_red):
                            last_red = r
                            tokens[ntok] = i
                            ntok += 1
            elif u == C_KEY or u == C_HOTKEY:
                for j in range(a, b):
                    i = order[j]
                    key = max(key, keyc[i])
                    mod = max(mod, mods[i])
                    if tcode[i] == T_KEY_DOWN and not flags[i] & F_FREE:
                        nkeys += 1
            elif u == C_SCROLL:
                for j in range(a, b):
                    i = order[j]
                    if tcode[i] == T_SCROLL:
                        if dyv[i]:
                            sdy += dy[i]
                        if dxv[i]:
                            sdx += dx[i]
        if all_free:
            # Moves: drop jitter below move_min_px (net displacement from
            # where the pointer was before the first sample).
            ok = lmxs[il] >= 0 and lmys[il] >= 0 and bxs[i0] >= 0 and bys[i0] >= 0
            if ok:
                ddx = x[lmxs[il]] - x[bxs[i0]]
                ddy = y[lmys[il]] - y[bys[i0]]
                ok = math.sqrt(float(ddx * ddx + ddy * ddy)) >= move_min_px
        else:
            ok = u == C_PRESS or u == C_SCROLL or u == C_TYPE or u == C_KEY or u == C_HOTKEY
            # A typing action whose text was all deleted within it changed nothing.
            ok = ok and not (u == C_TYPE and ntok == tok_start)
        if not ok:
            ntok = tok_start
            npt = pt_start
            continue
        is_press = u == C_PRESS and not all_free
        c_press[nc] = is_press
        c_drag[nc] = is_press and moved
        c_down[nc] = down
        c_downv[nc] = downv
        c_ux[nc] = ux
        c_uxv[nc] = uxv
        c_uy[nc] = uy
        c_uyv[nc] = uyv
        c_free[nc] = all_free
        c_u[nc] = u
        c_sid[nc] = sid[i0]
        mxs = lmxs[il]
        mys = lmys[il]
        # Pointer actions: where the press or scroll happened; moves: where the motion ended.
        if all_free:
            ints[I_X, nc] = x[mxs]
            valid[I_X, nc] = True
            ints[I_Y, nc] = y[mys]
            valid[I_Y, nc] = True
            start = first
            startv = True
        else:
            ints[I_X, nc] = px
            valid[I_X, nc] = pxv
            ints[I_Y, nc] = py
            valid[I_Y, nc] = pyv
        # Where a drag ends when its button-up is missing: where the pointer last moved.
        c_i0[nc] = i0
        c_il[nc] = il
        ints[I_WS, nc] = ws_m
        ints[I_TASK, nc] = task_m
        ints[I_BUTTON, nc] = btn
        ints[I_PRESSES, nc] = nkeys
        ints[I_KEY, nc] = key
        ints[I_MODS, nc] = mod
        ints[I_AMOUNT, nc] = max(abs(sdy), abs(sdx))
        ints[I_SDIR, nc] = 0 if sdy > 0 else (1 if sdy < 0 else (2 if sdx > 0 else 3))
        ints[I_START, nc] = start
        valid[I_START, nc] = startv
        ints[I_END, nc] = end
        ints[I_SEQ_FIRST, nc] = seqf
        ints[I_SEQ_LAST, nc] = seql
        ints[I_COUNT, nc] = b - a
        nc += 1
        tok_off[nc] = ntok
        pt_off[nc] = npt

    # Click chains: presses of one button, not drags, close in time and
    # space, nothing else between; every third starts anew. The group id is
    # the Polars version's ``chain * 1000 + k // 3`` (compared between rows).
    grp = np.empty(nc, np.int64)
    kpos = np.empty(nc, np.int64)
    chain = 0
    k = 0
    for c in range(nc):
        chained = (
            c > 0
            and c_press[c] and not c_drag[c] and c_press[c - 1] and not c_drag[c - 1]
            and c_sid[c] == c_sid[c - 1]
            and ints[I_BUTTON, c] >= 0 and ints[I_BUTTON, c] == ints[I_BUTTON, c - 1]
            and c_downv[c] and c_downv[c - 1] and c_down[c] - c_down[c - 1] <= multi_click_ns
            and valid[I_X, c] and valid[I_X, c - 1] and abs(ints[I_X, c] - ints[I_X, c - 1]) <= multi_click_px
            and valid[I_Y, c] and valid[I_Y, c - 1] and abs(ints[I_Y, c] - ints[I_Y, c - 1]) <= multi_click_px
        )  # fmt: skip
        if chained:
            k += 1
        else:
            chain += 1
            k = 0
        kpos[c] = k
        grp[c] = chain * 1000 + k // 3
    # Values from a merged group's last action (a null there stays null).
    last_c = np.empty(nc, np.int64)
    lastc = 0
    for c in range(nc - 1, -1, -1):
        if c == nc - 1 or grp[c] != grp[c + 1]:
            lastc = c
        last_c[c] = lastc

    o = -1
    prev_sid = 0
    first_of_session = 0
    wt = 0
    wp = 0
    for c in range(nc):
        if c > 0 and grp[c] == grp[c - 1]:
            continue
        o += 1
        # Compact: the columns the candidate pass wrote, its tokens and points
        # move to output slot o (the other columns are written below).
        if o != c:
            for col in (I_X, I_Y, I_WS, I_TASK, I_BUTTON, I_PRESSES, I_KEY, I_MODS, I_AMOUNT, I_SDIR, I_START, I_END, I_SEQ_FIRST, I_SEQ_LAST, I_COUNT):
                ints[col, o] = ints[col, c]
            for col in (I_X, I_Y, I_START):
                valid[col, o] = valid[col, c]
        for j in range(tok_off[c], tok_off[c + 1]):
            tokens[wt] = tokens[j]
            wt += 1
        for j in range(pt_off[c], pt_off[c + 1]):
            pts[0, wp] = pts[0, j]
            pts[1, wp] = pts[1, j]
            pts[2, wp] = pts[2, j]
            if not xy_valid:
                ptsv[0, wp] = ptsv[0, j]
                ptsv[1, wp] = ptsv[1, j]
            wp += 1
        tok_off[o + 1] = wt
        pt_off[o + 1] = wp
        lc = last_c[c]
        clicks = kpos[lc] % 3 + 1
        count = 0
        for cc in range(c, lc + 1):
            count += ints[I_COUNT, cc]
        is_press = c_press[c]
        btn = ints[I_BUTTON, o]
        u = c_u[c]
        if c_free[c]:
            act = A_MOVE
        elif c_drag[c]:
            act = A_DRAG
        elif is_press and btn >= 0 and btn == right_code:
            act = A_RIGHT
        elif is_press and btn >= 0 and btn == middle_code:
            act = A_MIDDLE
        elif is_press and clicks == 2:
            act = A_DOUBLE
        elif is_press and clicks == 3:
            act = A_TRIPLE
        elif is_press:
            act = A_CLICK
        elif u == C_SCROLL:
            act = A_SCROLL
        elif u == C_TYPE:
            act = A_TYPE
        elif u == C_KEY:
            act = A_PRESS
        else:
            act = A_HOTKEY
        ints[I_ACTION, o] = act
        s = c_sid[c]
        if o == 0 or s != prev_sid:
            first_of_session = o
        prev_sid = s
        ints[I_INDEX, o] = o - first_of_session
        for col in (I_ACTION, I_R0, I_INDEX, I_WS, I_TASK, I_END, I_SEQ_FIRST, I_SEQ_LAST, I_COUNT):
            valid[col, o] = True
        i0 = c_i0[c]
        il = c_il[c]
        ints[I_R0, o] = row[i0]
        ints[I_FOCUS, o] = focus[il]
        valid[I_FOCUS, o] = focusv[il]
        ints[I_SW, o] = sw[il]
        valid[I_SW, o] = swv[il]
        ints[I_SH, o] = sh[il]
        valid[I_SH, o] = shv[il]
        valid[I_END_X, o] = False
        valid[I_END_Y, o] = False
        if act == A_DRAG:
            # Where the button came up (the group's last), else where the pointer last moved.
            mxs = lmxs[il]
            mys = lmys[il]
            if c_uxv[lc]:
                ints[I_END_X, o] = c_ux[lc]
                valid[I_END_X, o] = True
            elif mxs >= 0:
                ints[I_END_X, o] = x[mxs]
                valid[I_END_X, o] = True
            if c_uyv[lc]:
                ints[I_END_Y, o] = c_uy[lc]
                valid[I_END_Y, o] = True
            elif mys >= 0:
                ints[I_END_Y, o] = y[mys]
                valid[I_END_Y, o] = True
        pointer_press = act != A_MOVE and act <= A_CLICK
        valid[I_BUTTON, o] = pointer_press and btn >= 0
        ints[I_CLICKS, o] = clicks
        valid[I_CLICKS, o] = pointer_press and act != A_DRAG
        valid[I_PRESSES, o] = act == A_PRESS
        valid[I_KEY, o] = (act == A_PRESS or act == A_HOTKEY) and ints[I_KEY, o] >= 0
        valid[I_MODS, o] = act == A_PRESS or act == A_HOTKEY
        valid[I_AMOUNT, o] = act == A_SCROLL
        valid[I_SDIR, o] = act == A_SCROLL
        end = ints[I_END, lc]
        ints[I_END, o] = end
        ints[I_SEQ_LAST, o] = ints[I_SEQ_LAST, lc]
        ints[I_COUNT, o] = count
        dur[o] = float(end - ints[I_START, o]) / 1e6
    nout = o + 1
    return ints[:, :nout], valid[:, :nout], dur[:nout], tokens[:wt], tok_off[: nout + 1], pts[:, :wp], ptsv[:, : (0 if xy_valid else wp)], pt_off[: nout + 1]


INT_COLUMNS = (
    "action", "_r0", "action_index", "work_session", "task", "x", "y", "end_x", "end_y", "button", "clicks",
    "presses", "_key", "_mods", "scroll_amount", "_sdir", "start_ns", "end_ns", "_focus", "screen_w", "screen_h",
    "seq_first", "seq_last", "event_count",
)  # fmt: skip
(
    I_ACTION, I_R0, I_INDEX, I_WS, I_TASK, I_X, I_Y, I_END_X, I_END_Y, I_BUTTON, I_CLICKS, I_PRESSES, I_KEY, I_MODS,
    I_AMOUNT, I_SDIR, I_START, I_END, I_FOCUS, I_SW, I_SH, I_SEQ_FIRST, I_SEQ_LAST, I_COUNT,
) = range(len(INT_COLUMNS))  # fmt: skip
N_INTS = len(INT_COLUMNS)


# Literal pieces of the PyAutoGUI commands, by id (passed to the kernel as one buffer).
_CALL_NAMES = {
    A_CLICK: "pyautogui.click(", A_DOUBLE: "pyautogui.doubleClick(", A_TRIPLE: "pyautogui.tripleClick(",
    A_RIGHT: "pyautogui.rightClick(", A_MIDDLE: "pyautogui.middleClick(", A_MOVE: "pyautogui.moveTo(",
    A_DRAG: "pyautogui.moveTo(", A_SCROLL: "pyautogui.scroll(", A_TYPE: "pyautogui.write(",
    A_PRESS: "pyautogui.press(", A_HOTKEY: "pyautogui.hotkey(",
}  # fmt: skip
LITERALS = [_CALL_NAMES[a] for a in range(len(ACTION_NAMES))] + [
    "pyautogui.hscroll(", "-", ", ", "x=", ", y=", "); pyautogui.dragTo(x=", ", button='", "'", ", presses=", ")",
]  # fmt: skip
L_HSCROLL, L_MINUS, L_COMMA, L_X, L_Y, L_DRAG, L_BUTTON, L_QUOTE, L_PRESSES, L_CLOSE = range(len(ACTION_NAMES), len(LITERALS))


def literal_buffers() -> tuple[np.ndarray, np.ndarray]:
    data = [s.encode() for s in LITERALS]
    offsets = np.zeros(len(data) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in data])
    return offsets, np.frombuffer(b"".join(data), np.uint8)


@numba.njit(cache=True, inline="always")
def _put(out, pos, src, a, b, write):
    if write:
        for k in range(b - a):
            out[pos + k] = src[a + k]
    return pos + b - a


@numba.njit(cache=True, inline="always")
def _put_lit(out, pos, lo, ld, lit, write):
    return _put(out, pos, ld, lo[lit], lo[lit + 1], write)


@numba.njit(cache=True)
def _put_int(out, pos, v, write):
    """Decimal digits of ``v`` (as Polars casts an integer to a string)."""
    if v < 0:
        if write:
            out[pos] = 45  # "-"
        pos += 1
        v = -v
    nd = 1
    p = v
    while p >= 10:
        p //= 10
        nd += 1
    if write:
        for k in range(nd - 1, -1, -1):
            out[pos + k] = 48 + v % 10
            v //= 10
    return pos + nd


@numba.njit(cache=True)
def _escaped(out, pos, src, a, b, write):
    """Text as a Python string literal's body: backslash, quote and newline escaped."""
    for k in range(a, b):
        c = src[k]
        if c == 92 or c == 39:  # "\\", "'"
            if write:
                out[pos] = 92
                out[pos + 1] = c
            pos += 2
        elif c == 10:  # "\n"
            if write:
                out[pos] = 92
                out[pos + 1] = 110
            pos += 2
        else:
            if write:
                out[pos] = c
            pos += 1
    return pos


@numba.njit(cache=True, nogil=True)
def strings(ints, valid, tok_off, tok_so, tok_data, k_off, kidx, voc_so, voc_data, btn_so, btn_data, lo, ld):
    """Text and PyAutoGUI command of every action as Arrow string buffers:
    (text offsets, text bytes, command offsets, command bytes, command
    valid). A command is null when a piece it needs is null (a missing
    coordinate or button), as in ``actions.command_expr``.

    The tokens are in output order, so the texts are their bytes as they
    are (offsets only). Commands are written in one pass into a buffer
    sized by an upper bound (unused tail left untouched)."""
    nout = ints.shape[1]
    base = tok_so[0]
    t_off = np.empty(nout + 1, np.int64)
    for o in range(nout + 1):
        t_off[o] = tok_so[tok_off[o]] - base
    t_data = tok_data[base : tok_so[tok_so.shape[0] - 1]]
    longest_btn = 0
    for b in range(btn_so.shape[0] - 1):
        longest_btn = max(longest_btn, btn_so[b + 1] - btn_so[b])
    longest_voc = 0
    for v in range(voc_so.shape[0] - 1):
        longest_voc = max(longest_voc, voc_so[v + 1] - voc_so[v])
    # Per action at most: literals (< 160 bytes), four integers (< 21 bytes
    # each), the button, the escaped text (2 bytes per byte) and the quoted keys.
    cap = nout * (160 + 4 * 21 + longest_btn) + 2 * t_data.shape[0] + kidx.shape[0] * (longest_voc + 4)
    c_data = np.empty(cap, np.uint8)
    c_off = np.zeros(nout + 1, np.int64)
    c_valid = np.zeros(nout, np.bool_)
    cp = 0
    for o in range(nout):
        act = ints[I_ACTION, o]
        pointer = act <= A_CLICK or act == A_SCROLL
        ok = True
        if pointer and not (valid[I_X, o] and valid[I_Y, o]):
            ok = False
        if act == A_DRAG and not (valid[I_END_X, o] and valid[I_END_Y, o] and valid[I_BUTTON, o]):
            ok = False
        if act == A_PRESS and not valid[I_PRESSES, o]:
            ok = False
        c_valid[o] = ok
        if not ok:
            c_off[o + 1] = cp
            continue
        sdir = ints[I_SDIR, o]
        if act == A_SCROLL and sdir >= 2:
            cp = _put_lit(c_data, cp, lo, ld, L_HSCROLL, True)
        else:
            cp = _put_lit(c_data, cp, lo, ld, act, True)
        if act == A_SCROLL:
            if sdir == 1 or sdir == 3:
                cp = _put_lit(c_data, cp, lo, ld, L_MINUS, True)
            cp = _put_int(c_data, cp, ints[I_AMOUNT, o], True)
            cp = _put_lit(c_data, cp, lo, ld, L_COMMA, True)
        if pointer:
            cp = _put_lit(c_data, cp, lo, ld, L_X, True)
            cp = _put_int(c_data, cp, ints[I_X, o], True)
            cp = _put_lit(c_data, cp, lo, ld, L_Y, True)
            cp = _put_int(c_data, cp, ints[I_Y, o], True)
        if act == A_DRAG:
            cp = _put_lit(c_data, cp, lo, ld, L_DRAG, True)
            cp = _put_int(c_data, cp, ints[I_END_X, o], True)
            cp = _put_lit(c_data, cp, lo, ld, L_Y, True)
            cp = _put_int(c_data, cp, ints[I_END_Y, o], True)
            cp = _put_lit(c_data, cp, lo, ld, L_BUTTON, True)
            b = ints[I_BUTTON, o]
            cp = _put(c_data, cp, btn_data, btn_so[b], btn_so[b + 1], True)
            cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, True)
        if act == A_TYPE:
            cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, True)
            cp = _escaped(c_data, cp, t_data, t_off[o], t_off[o + 1], True)
            cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, True)
        if act == A_PRESS or act == A_HOTKEY:
            first = True
            for j in range(k_off[o], k_off[o + 1]):
                v = kidx[j]
                if v < 0:
                    continue  # a null key name is left out of the list, as list.join does
                if not first:
                    cp = _put_lit(c_data, cp, lo, ld, L_COMMA, True)
                first = False
                cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, True)
                cp = _put(c_data, cp, voc_data, voc_so[v], voc_so[v + 1], True)
                cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, True)
        if act == A_PRESS:
            cp = _put_lit(c_data, cp, lo, ld, L_PRESSES, True)
            cp = _put_int(c_data, cp, ints[I_PRESSES, o], True)
        cp = _put_lit(c_data, cp, lo, ld, L_CLOSE, True)
        c_off[o + 1] = cp
    return t_off, t_data, c_off, c_data[:cp], c_valid


@numba.njit(cache=True, nogil=True)
def key_lists(ints, valid, n_keys):
    """``keys`` of press and hotkey actions as list offsets and indices into
    the vocabulary ``[ctrl, alt, win, shift, altgr] + keys + lower(keys)``
    (-1: a null key). Modifier bits in ``MOD_BITS`` order."""
    nout = ints.shape[1]
    off = np.zeros(nout + 1, np.int64)
    idx = np.empty(nout * 6, np.int64)
    m = 0
    for o in range(nout):
        act = ints[I_ACTION, o]
        k = ints[I_KEY, o] if valid[I_KEY, o] else -1
        if act == A_HOTKEY:
            mods = ints[I_MODS, o]
            for b in range(5):
                if mods & MOD_BITS[b]:
                    idx[m] = b
                    m += 1
            idx[m] = 5 + n_keys + k if k >= 0 else -1
            m += 1
        elif act == A_PRESS:
            idx[m] = 5 + k if k >= 0 else -1
            m += 1
        off[o + 1] = m
    return off, idx[:m]
