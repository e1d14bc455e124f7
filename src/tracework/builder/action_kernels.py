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
   validity masks, and offsets into token and path-point arrays. Strings
   (text, keys, names) are assembled afterwards by vectorised gathers.

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


@numba.njit(cache=True, nogil=True)
def row_keys(tcode, excluded, sid, ws, task, t, x, xv, y, yv, dx, dxv, dy, dyv, kcat, keyc, scroll_gap):
    """Per row: ``akey`` (``DROP`` for rows in no action) and the per-row facts
    the aggregation reads. Inputs are full-length columns of the sessionized
    frame; excluded rows, key-ups and rows of unknown type are skipped (the
    Polars version filters them out first)."""
    n = tcode.shape[0]
    akey = np.full(n, DROP, np.int64)
    ucat = np.full(n, -1, np.int8)  # second-pass unit category (-1: not a unit)
    newu = np.zeros(n, np.bool_)  # unit row that starts an action
    free = np.zeros(n, np.bool_)  # pointer motion with no button held
    in_press = np.zeros(n, np.bool_)  # button-up, or motion while a button is held
    survives = np.zeros(n, np.bool_)  # typed token still present at the end of its run
    bx = np.zeros(n, np.int64)  # where the pointer was before the row
    bxv = np.zeros(n, np.bool_)
    by = np.zeros(n, np.int64)
    byv = np.zeros(n, np.bool_)
    fx = np.zeros(n, np.int64)  # where the last press started
    fxv = np.zeros(n, np.bool_)
    fy = np.zeros(n, np.int64)
    fyv = np.zeros(n, np.bool_)
    lmx = np.zeros(n, np.int64)  # where the pointer last moved
    lmxv = np.zeros(n, np.bool_)
    lmy = np.zeros(n, np.int64)
    lmyv = np.zeros(n, np.bool_)
    depth = np.zeros(n, np.int32)
    delta = np.zeros(n, np.int8)
    grp1 = np.zeros(n, np.int64)
    aid_own = np.full(n, -1, np.int64)
    prev_aid = np.full(n, -1, np.int64)

    have_last = False
    last_sid = 0
    held = 0
    lx = 0
    lxv = False
    ly = 0
    lyv = False
    aid_fwd = -1
    # Global forward fills (across sessions, as in the Polars version).
    gfx = 0
    gfxv = False
    gfy = 0
    gfyv = False
    glmx = 0
    glmxv = False
    glmy = 0
    glmyv = False
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
    max_aid = 0

    for i in range(n):
        tc = tcode[i]
        if tc < 0 or tc == T_KEY_UP or excluded[i]:
            continue
        s = sid[i]
        if not have_last or s != last_sid:
            held = 0
            lxv = False
            lyv = False
            aid_fwd = -1
        have_last = True
        last_sid = s
        # Button depth, clamped at zero (a button-up with nothing held does nothing).
        if tc == T_DOWN:
            held += 1
        elif tc == T_UP:
            held = held - 1 if held > 0 else 0
        ip = tc == T_UP or (tc == T_MOVE and held > 0)
        in_press[i] = ip
        # Pointer position before the row (last known in the session), else the row's own.
        if lxv:
            bx[i] = lx
            bxv[i] = True
        else:
            bx[i] = x[i]
            bxv[i] = xv[i]
        if lyv:
            by[i] = ly
            byv[i] = True
        else:
            by[i] = y[i]
            byv[i] = yv[i]
        if xv[i]:
            lx = x[i]
            lxv = True
        if yv[i]:
            ly = y[i]
            lyv = True
        if tc == T_DOWN:
            if xv[i]:
                gfx = x[i]
                gfxv = True
            if yv[i]:
                gfy = y[i]
                gfyv = True
        if tc == T_MOVE:
            if xv[i]:
                glmx = x[i]
                glmxv = True
            if yv[i]:
                glmy = y[i]
                glmyv = True
        fx[i] = gfx
        fxv[i] = gfxv
        fy[i] = gfy
        fyv[i] = gfyv
        lmx[i] = glmx
        lmxv[i] = glmxv
        lmy[i] = glmy
        lmyv[i] = glmyv

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
            grp1[i] = aid1
            depth[i] = d
            free[i] = tc == T_MOVE and not ip
            if ip:
                aid_own[i] = aid_fwd
            prev_aid[i] = aid_fwd
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
        d = d + dl if d + dl > 0 else 0
        delta[i] = dl
        depth[i] = d
        grp1[i] = aid1
        # Second pass: an underflowing backspace is a key press of its own.
        u2 = C_KEY if (u1 == C_TYPE and kc == C_BACKSPACE and under) else u1
        cont_extra2 = True
        if u2 == C_KEY:
            cont_extra2 = k >= 0 and p_key >= 0 and k == p_key
        elif u2 == C_SCROLL:
            cont_extra2 = cont_extra
        new2 = not (same_ctx and u2 == p_u2 and u2 != C_PRESS and u2 != C_HOTKEY and u2 != C_BREAK and cont_extra2)
        if new2:
            aid2 += 1
        ucat[i] = u2
        newu[i] = new2
        aid_own[i] = aid2
        aid_fwd = aid2
        max_aid = aid2
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
    ng = -1
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
        if grp1[i] != ng:
            ng = grp1[i]
            rmin = depth[i]
        elif depth[i] < rmin:
            rmin = depth[i]
        survives[i] = delta[i] > 0 and rmin >= depth[i]
        u = ucat[i]
        if u >= 0 and u != C_BREAK:
            nb = aid_own[i]
            ncat = u
        if free[i]:
            if nb >= 0:
                akey[i] = 3 * nb + 1 if (ncat == C_PRESS or ncat == C_SCROLL) else 3 * nb
            elif prev_aid[i] >= 0:
                akey[i] = 3 * prev_aid[i] + 2
            else:
                akey[i] = -1
        elif aid_own[i] >= 0:
            akey[i] = 3 * aid_own[i] + 1
    return (akey, max_aid, ucat, newu, free, in_press, survives, bx, bxv, by, byv, fx, fxv, fy, fyv, lmx, lmxv, lmy, lmyv)


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
    order = np.empty(m, np.int64)
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
    ucat, newu, free, in_press, survives, bx, bxv, by, byv, fx, fxv, fy, fyv, lmx, lmxv, lmy, lmyv,
    move_min_px, drag_px, multi_click_ns, multi_click_px, right_code, middle_code,
):  # fmt: skip
    """One entry per output action, in output order (see the module doc).

    Returns (ints, valid, floats, tokens, token_offsets, points, point_offsets):
    ``ints`` an (I_* x actions) int64 matrix, ``valid`` the matching validity,
    ``floats`` the duration; ``tokens`` the rows whose text makes each typing
    action's text; ``points`` (x, y, t_ms, x valid, y valid) of each path."""
    ngroups = starts.shape[0] - 1
    # Candidate actions (one per non-empty akey group that passes the filters).
    cg = np.empty(ngroups, np.int64)
    c_sid = np.empty(ngroups, np.int64)
    c_press = np.zeros(ngroups, np.bool_)
    c_drag = np.zeros(ngroups, np.bool_)
    c_btn = np.empty(ngroups, np.int64)
    c_px = np.empty(ngroups, np.int64)
    c_pxv = np.zeros(ngroups, np.bool_)
    c_py = np.empty(ngroups, np.int64)
    c_pyv = np.zeros(ngroups, np.bool_)
    c_down = np.empty(ngroups, np.int64)
    c_downv = np.zeros(ngroups, np.bool_)
    c_ux = np.empty(ngroups, np.int64)
    c_uxv = np.zeros(ngroups, np.bool_)
    c_uy = np.empty(ngroups, np.int64)
    c_uyv = np.zeros(ngroups, np.bool_)
    c_end = np.empty(ngroups, np.int64)
    c_seql = np.empty(ngroups, np.int64)
    c_count = np.empty(ngroups, np.int64)
    nc = 0
    for g in range(ngroups):
        a, b = starts[g], starts[g + 1]
        if a == b:
            continue
        u = -1
        all_free = True
        mxv = lmxv[order[b - 1]]
        i0 = order[a]
        for j in range(a, b):
            i = order[j]
            if ucat[i] > u:
                u = ucat[i]
            if not free[i]:
                all_free = False
        if all_free:
            if not mxv:
                continue
        elif not (u == C_PRESS or u == C_SCROLL or u == C_TYPE or u == C_KEY or u == C_HOTKEY):
            continue
        if all_free:
            # Moves: drop jitter below move_min_px (net displacement from
            # where the pointer was before the first sample).
            il = order[b - 1]
            if not (bxv[i0] and byv[i0] and lmyv[il]):
                continue
            ddx = lmx[il] - bx[i0]
            ddy = lmy[il] - by[i0]
            if not math.sqrt(float(ddx * ddx + ddy * ddy)) >= move_min_px:
                continue
        elif u == C_TYPE:
            # A typing action whose text was all deleted within it changed nothing.
            alive = False
            for j in range(a, b):
                i = order[j]
                if ucat[i] == C_TYPE and survives[i]:
                    alive = True
                    break
            if not alive:
                continue
        is_press = u == C_PRESS and not all_free
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
        movedv = False
        moved = 0
        end = t[i0]
        seql = seq[i0]
        for j in range(a, b):
            i = order[j]
            tc = tcode[i]
            if t[i] > end:
                end = t[i]
            if seq[i] > seql:
                seql = seq[i]
            if tc == T_DOWN:
                if btnc[i] > btn:
                    btn = btnc[i]
                if not downv or t[i] > down:
                    down = t[i]
                    downv = True
            if (tc == T_DOWN or tc == T_SCROLL) and newu[i]:
                if xv[i] and (not pxv or x[i] > px):
                    px = x[i]
                    pxv = True
                if yv[i] and (not pyv or y[i] > py):
                    py = y[i]
                    pyv = True
            if tc == T_UP:
                if xv[i] and (not uxv or x[i] > ux):
                    ux = x[i]
                    uxv = True
                if yv[i] and (not uyv or y[i] > uy):
                    uy = y[i]
                    uyv = True
            if in_press[i] and xv[i] and fxv[i] and yv[i] and fyv[i]:
                mv = abs(x[i] - fx[i]) + abs(y[i] - fy[i])
                if not movedv or mv > moved:
                    moved = mv
                    movedv = True
        cg[nc] = g
        c_sid[nc] = sid[i0]
        c_press[nc] = is_press
        c_drag[nc] = is_press and movedv and moved > drag_px
        c_btn[nc] = btn
        c_px[nc] = px
        c_pxv[nc] = pxv
        c_py[nc] = py
        c_pyv[nc] = pyv
        c_down[nc] = down
        c_downv[nc] = downv
        c_ux[nc] = ux
        c_uxv[nc] = uxv
        c_uy[nc] = uy
        c_uyv[nc] = uyv
        c_end[nc] = end
        c_seql[nc] = seql
        c_count[nc] = b - a
        nc += 1

    # Click chains: presses of one button, not drags, close in time and
    # space, nothing else between; every third starts anew. The group id is
    # the Polars version's ``chain * 1000 + k // 3`` (compared between rows).
    grp = np.empty(nc, np.int64)
    kpos = np.empty(nc, np.int64)
    chain = 0
    k = 0
    for c in range(nc):
        click = c_press[c] and not c_drag[c]
        chained = False
        if c > 0 and click and c_press[c - 1] and not c_drag[c - 1] and c_sid[c] == c_sid[c - 1]:
            if c_btn[c] >= 0 and c_btn[c - 1] >= 0 and c_btn[c] == c_btn[c - 1]:
                if c_downv[c] and c_downv[c - 1] and c_down[c] - c_down[c - 1] <= multi_click_ns:
                    if c_pxv[c] and c_pxv[c - 1] and abs(c_px[c] - c_px[c - 1]) <= multi_click_px:
                        chained = c_pyv[c] and c_pyv[c - 1] and abs(c_py[c] - c_py[c - 1]) <= multi_click_px
        if chained:
            k += 1
        else:
            chain += 1
            k = 0
        kpos[c] = k
        grp[c] = chain * 1000 + k // 3
    # Values from a merged group's last action: a backward fill from the rows
    # that end a group, so (as in the Polars version) a missing value is
    # filled from a later group.
    last_ux = np.empty(nc, np.int64)
    last_uxv = np.zeros(nc, np.bool_)
    last_uy = np.empty(nc, np.int64)
    last_uyv = np.zeros(nc, np.bool_)
    last_c = np.empty(nc, np.int64)
    fux = 0
    fuxv = False
    fuy = 0
    fuyv = False
    lastc = 0
    for c in range(nc - 1, -1, -1):
        if c == nc - 1 or grp[c] != grp[c + 1]:
            lastc = c
            if c_uxv[c]:
                fux = c_ux[c]
                fuxv = True
            if c_uyv[c]:
                fuy = c_uy[c]
                fuyv = True
        last_ux[c] = fux
        last_uxv[c] = fuxv
        last_uy[c] = fuy
        last_uyv[c] = fuyv
        last_c[c] = lastc

    nout = 0
    for c in range(nc):
        if c == 0 or grp[c] != grp[c - 1]:
            nout += 1
    ints = np.zeros((N_INTS, nout), np.int64)
    valid = np.zeros((N_INTS, nout), np.bool_)
    dur = np.empty(nout, np.float64)
    tokens = np.empty(order.shape[0], np.int64)
    tok_off = np.zeros(nout + 1, np.int64)
    pts = np.empty((3, order.shape[0]), np.int32)
    ptsv = np.empty((2, order.shape[0]), np.bool_)
    pt_off = np.zeros(nout + 1, np.int64)
    ntok = 0
    npt = 0
    o = -1
    prev_sid = 0
    first_of_session = 0
    for c in range(nc):
        if c > 0 and grp[c] == grp[c - 1]:
            continue
        o += 1
        g = cg[c]
        a, b = starts[g], starts[g + 1]
        i0 = order[a]
        il = order[b - 1]
        u = -1
        all_free = True
        ws_m = ws[i0]
        task_m = task[i0]
        key = -1
        mod = mods[i0]
        nkeys = 0
        sdy = 0
        sdx = 0
        startv = False
        start = 0
        first = t[i0]
        seqf = seq[i0]
        ptv = False
        pt0 = 0
        for j in range(a, b):
            i = order[j]
            tc = tcode[i]
            if ucat[i] > u:
                u = ucat[i]
            if ws[i] > ws_m:
                ws_m = ws[i]
            if task[i] > task_m:
                task_m = task[i]
            if keyc[i] > key:
                key = keyc[i]
            if mods[i] > mod:
                mod = mods[i]
            if not free[i]:
                all_free = False
                if tc == T_KEY_DOWN:
                    nkeys += 1
                if not startv or t[i] < start:
                    start = t[i]
                    startv = True
            if tc == T_SCROLL:
                if dyv[i]:
                    sdy += dy[i]
                if dxv[i]:
                    sdx += dx[i]
            if t[i] < first:
                first = t[i]
            if seq[i] < seqf:
                seqf = seq[i]
            if tc == T_MOVE or tc == T_DOWN or tc == T_UP:
                if not ptv or t[i] < pt0:
                    pt0 = t[i]
                    ptv = True
        # Text: surviving tokens; consecutive placeholders of one redacted span collapse.
        last_red = -1
        for j in range(a, b):
            i = order[j]
            if ucat[i] == C_TYPE and survives[i]:
                r = redc[i]
                if r >= 0 and r == last_red:
                    continue
                last_red = r
                tokens[ntok] = i
                ntok += 1
        # Path: pointer rows, time in ms from the first of them.
        for j in range(a, b):
            i = order[j]
            tc = tcode[i]
            if tc == T_MOVE or tc == T_DOWN or tc == T_UP:
                pts[0, npt] = np.int32(x[i])
                pts[1, npt] = np.int32(y[i])
                pts[2, npt] = np.int32((t[i] - pt0) // 1_000_000)
                ptsv[0, npt] = xv[i]
                ptsv[1, npt] = yv[i]
                npt += 1
        tok_off[o + 1] = ntok
        pt_off[o + 1] = npt

        lc = last_c[c]
        clicks = kpos[lc] % 3 + 1
        count = 0
        for cc in range(c, lc + 1):
            count += c_count[cc]
        is_press = c_press[c]
        btn = c_btn[c]
        if all_free:
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
        valid[I_ACTION, o] = True
        ints[I_R0, o] = row[i0]
        valid[I_R0, o] = True
        s = c_sid[c]
        if o == 0 or s != prev_sid:
            first_of_session = o
        prev_sid = s
        ints[I_INDEX, o] = o - first_of_session
        valid[I_INDEX, o] = True
        ints[I_WS, o] = ws_m
        valid[I_WS, o] = True
        ints[I_TASK, o] = task_m
        valid[I_TASK, o] = True
        if act == A_MOVE:
            ints[I_X, o] = lmx[il]
            valid[I_X, o] = lmxv[il]
            ints[I_Y, o] = lmy[il]
            valid[I_Y, o] = lmyv[il]
        else:
            ints[I_X, o] = c_px[c]
            valid[I_X, o] = c_pxv[c]
            ints[I_Y, o] = c_py[c]
            valid[I_Y, o] = c_pyv[c]
        if act == A_DRAG:
            if last_uxv[c]:
                ints[I_END_X, o] = last_ux[c]
                valid[I_END_X, o] = True
            else:
                ints[I_END_X, o] = lmx[il]
                valid[I_END_X, o] = lmxv[il]
            if last_uyv[c]:
                ints[I_END_Y, o] = last_uy[c]
                valid[I_END_Y, o] = True
            else:
                ints[I_END_Y, o] = lmy[il]
                valid[I_END_Y, o] = lmyv[il]
        if act == A_DRAG or act == A_RIGHT or act == A_MIDDLE or act == A_DOUBLE or act == A_TRIPLE or act == A_CLICK:
            ints[I_BUTTON, o] = btn
            valid[I_BUTTON, o] = btn >= 0
        if act == A_RIGHT or act == A_MIDDLE or act == A_DOUBLE or act == A_TRIPLE or act == A_CLICK:
            ints[I_CLICKS, o] = clicks
            valid[I_CLICKS, o] = True
        if act == A_PRESS:
            ints[I_PRESSES, o] = nkeys
            valid[I_PRESSES, o] = True
        if act == A_PRESS or act == A_HOTKEY:
            ints[I_KEY, o] = key
            valid[I_KEY, o] = key >= 0
            ints[I_MODS, o] = mod
            valid[I_MODS, o] = True
        if act == A_SCROLL:
            ints[I_AMOUNT, o] = max(abs(sdy), abs(sdx))
            valid[I_AMOUNT, o] = True
            if sdy > 0:
                ints[I_SDIR, o] = 0
            elif sdy < 0:
                ints[I_SDIR, o] = 1
            elif sdx > 0:
                ints[I_SDIR, o] = 2
            else:
                ints[I_SDIR, o] = 3
            valid[I_SDIR, o] = True
        if act == A_MOVE:
            start = first
            startv = True
        ints[I_START, o] = start
        valid[I_START, o] = startv
        end = c_end[lc]
        ints[I_END, o] = end
        valid[I_END, o] = True
        dur[o] = float(end - start) / 1e6
        ints[I_FOCUS, o] = focus[il]
        valid[I_FOCUS, o] = focusv[il]
        ints[I_SW, o] = sw[il]
        valid[I_SW, o] = swv[il]
        ints[I_SH, o] = sh[il]
        valid[I_SH, o] = shv[il]
        ints[I_SEQ_FIRST, o] = seqf
        valid[I_SEQ_FIRST, o] = True
        ints[I_SEQ_LAST, o] = c_seql[lc]
        valid[I_SEQ_LAST, o] = True
        ints[I_COUNT, o] = count
        valid[I_COUNT, o] = True
    return ints, valid, dur, tokens[:ntok], tok_off, pts[:, :npt], ptsv[:, :npt], pt_off


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
        out[pos : pos + b - a] = src[a:b]
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
    coordinate or button), as in ``actions.command_expr``."""
    nout = ints.shape[1]
    t_off = np.zeros(nout + 1, np.int64)
    c_off = np.zeros(nout + 1, np.int64)
    c_valid = np.zeros(nout, np.bool_)
    t_data = np.empty(0, np.uint8)
    c_data = np.empty(0, np.uint8)
    for write in (False, True):
        if write:
            t_data = np.empty(t_off[nout], np.uint8)
            c_data = np.empty(c_off[nout], np.uint8)
        tp = 0
        cp = 0
        for o in range(nout):
            act = ints[I_ACTION, o]
            # Text: the action's tokens concatenated.
            t0 = tp
            for j in range(tok_off[o], tok_off[o + 1]):
                tp = _put(t_data, tp, tok_data, tok_so[j], tok_so[j + 1], write)
            t_off[o + 1] = tp
            ok = True
            pointer = act <= A_CLICK or act == A_SCROLL
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
                cp = _put_lit(c_data, cp, lo, ld, L_HSCROLL, write)
            else:
                cp = _put_lit(c_data, cp, lo, ld, act, write)
            if act == A_SCROLL:
                if sdir == 1 or sdir == 3:
                    cp = _put_lit(c_data, cp, lo, ld, L_MINUS, write)
                cp = _put_int(c_data, cp, ints[I_AMOUNT, o], write)
                cp = _put_lit(c_data, cp, lo, ld, L_COMMA, write)
            if pointer:
                cp = _put_lit(c_data, cp, lo, ld, L_X, write)
                cp = _put_int(c_data, cp, ints[I_X, o], write)
                cp = _put_lit(c_data, cp, lo, ld, L_Y, write)
                cp = _put_int(c_data, cp, ints[I_Y, o], write)
            if act == A_DRAG:
                cp = _put_lit(c_data, cp, lo, ld, L_DRAG, write)
                cp = _put_int(c_data, cp, ints[I_END_X, o], write)
                cp = _put_lit(c_data, cp, lo, ld, L_Y, write)
                cp = _put_int(c_data, cp, ints[I_END_Y, o], write)
                cp = _put_lit(c_data, cp, lo, ld, L_BUTTON, write)
                b = ints[I_BUTTON, o]
                cp = _put(c_data, cp, btn_data, btn_so[b], btn_so[b + 1], write)
                cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, write)
            if act == A_TYPE:
                cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, write)
                if write:
                    cp = _escaped(c_data, cp, t_data, t0, tp, True)
                else:
                    for j in range(tok_off[o], tok_off[o + 1]):
                        cp = _escaped(c_data, cp, tok_data, tok_so[j], tok_so[j + 1], False)
                cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, write)
            if act == A_PRESS or act == A_HOTKEY:
                first = True
                for j in range(k_off[o], k_off[o + 1]):
                    v = kidx[j]
                    if v < 0:
                        continue  # a null key name is left out of the list, as list.join does
                    if not first:
                        cp = _put_lit(c_data, cp, lo, ld, L_COMMA, write)
                    first = False
                    cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, write)
                    cp = _put(c_data, cp, voc_data, voc_so[v], voc_so[v + 1], write)
                    cp = _put_lit(c_data, cp, lo, ld, L_QUOTE, write)
            if act == A_PRESS:
                cp = _put_lit(c_data, cp, lo, ld, L_PRESSES, write)
                cp = _put_int(c_data, cp, ints[I_PRESSES, o], write)
            cp = _put_lit(c_data, cp, lo, ld, L_CLOSE, write)
            c_off[o + 1] = cp
    return t_off, t_data, c_off, c_data, c_valid


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
