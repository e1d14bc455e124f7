"""Compiled loops (numba) behind :func:`tracework.builder.sessions.normalize`
and :func:`~tracework.builder.sessions.sessionize`.

Each kernel is one pass over NumPy views of the frame's columns, rows sorted
by (session, seq), carrying the per-session state (blocked, paused, focused
window, screen size, counters) in local variables and resetting it where the
session id changes. They compute exactly what the Polars window expressions
of :mod:`tracework.builder.reference` compute (the differential tests compare
the two), without materialising a dozen intermediate columns.

Compiled with ``cache=True``: the machine code is kept in ``__pycache__`` and
reloaded by later processes (the first process on a machine compiles, about
a second per kernel).
"""

from __future__ import annotations

import numba
import numpy as np

# Tristate values of carried booleans (a Polars null is "no value yet").
_NULL = -1


@numba.njit(cache=True, nogil=True)
def first_rows(codes: np.ndarray, null_code: int, top: int) -> np.ndarray:
    """For dictionary codes (``null_code`` marks a null; ``top`` the largest
    other code), a row holding each code, indexed by code (-1 for codes
    absent): the distinct values of a Categorical column are its rows
    ``first_rows[first_rows >= 0]``. One pass, no hashing, no sort."""
    first = np.full(top + 1, -1, np.int64)
    for i in range(codes.shape[0]):
        c = codes[i]
        if c != null_code and first[c] < 0:
            first[c] = i
    return first


@numba.njit(cache=True, nogil=True)
def gather_views(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Arrow string views (16 bytes: two uint64 words per string) of each
    row's code in ``table``. A code past the table's end (the unspecified
    value under a null) takes the last entry; the caller's validity bitmap
    makes those rows null anyway."""
    n = codes.shape[0]
    last = table.shape[0] - 1
    out = np.empty((n, 2), np.uint64)
    for i in range(n):
        c = codes[i]
        c = min(c, last)
        out[i, 0] = table[c, 0]
        out[i, 1] = table[c, 1]
    return out


@numba.njit(cache=True, nogil=True)
def session_runs(sh: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Start rows of runs: maximal stretches of one session hash with strictly
    increasing seq (``seq`` must have no nulls)."""
    n = sh.shape[0]
    out = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        if i == 0 or sh[i] != sh[i - 1] or seq[i] <= seq[i - 1]:
            out[k] = i
            k += 1
    return out[:k]


@numba.njit(cache=True, nogil=True)
def session_ids(sh: np.ndarray) -> np.ndarray:
    """1-based running count of session-hash changes (``_sid``)."""
    n = sh.shape[0]
    out = np.empty(n, np.int64)
    sid = 0
    for i in range(n):
        if i == 0 or sh[i] != sh[i - 1]:
            sid += 1
        out[i] = sid
    return out


@numba.njit(cache=True, nogil=True)
def sessionize_kernel(
    sid: np.ndarray,
    row: np.ndarray,
    t: np.ndarray,
    t_valid: np.ndarray,
    typ: np.ndarray,
    denied: np.ndarray,
    lock: np.ndarray,
    app_valid: np.ndarray,
    fhash: np.ndarray,
    sw: np.ndarray,
    sw_valid: np.ndarray,
    sh: np.ndarray,
    sh_valid: np.ndarray,
    gap_ns: int,
    task_ns: int,
    c_focus: int,
    c_pause: int,
    c_resume: int,
    c_start: int,
    c_idle: int,
    c_active: int,
):
    """Per-row session state (see :func:`tracework.builder.sessions.sessionize`).

    ``typ`` holds the event-type Enum codes, ``c_*`` the codes compared with,
    ``row`` the ``_row`` numbers. ``lock``, ``app_valid`` and ``fhash`` have
    one entry per focus-change row, in row order: its app is a lock screen,
    it has an app, the hash of its (app, title).
    ``t_valid``, ``sw_valid`` and ``sh_valid`` may be empty: no nulls.
    Returns (focus row, its validity (also the focus hash's), focus hash,
    screen_w, validity, screen_h, validity, excluded, clock_jump,
    work_session, task)."""
    n = sid.shape[0]
    # Every row of every output is written below (np.empty: no zeroing pass).
    focus = np.empty(n, np.int64)
    focus_ok = np.empty(n, np.bool_)  # also the validity of the focus hash
    fh = np.empty(n, np.uint64)
    w_out = np.empty(n, np.int64)
    w_ok = np.empty(n, np.bool_)
    h_out = np.empty(n, np.int64)
    h_ok = np.empty(n, np.bool_)
    excluded = np.empty(n, np.bool_)
    clock_jump = np.empty(n, np.bool_)
    ws_out = np.empty(n, np.int32)
    task_out = np.empty(n, np.int32)

    blocked = _NULL
    paused = _NULL
    cur_focus = 0
    cur_focus_ok = False
    cur_fh = np.uint64(0)
    cur_w = 0
    cur_w_ok = False
    cur_h = 0
    cur_h_ok = False
    ws = -1
    task = -1
    k = 0  # index of the next focus-change row in lock / app_valid / fhash
    for i in range(n):
        first = i == 0 or sid[i] != sid[i - 1]
        if first:
            blocked = _NULL
            paused = _NULL
            cur_focus_ok = False
            cur_w_ok = False
            cur_h_ok = False
            ws = -1
            task = -1
        tp = typ[i]
        is_focus = tp == c_focus
        if is_focus:
            # denied | app.is_in(lock_apps), Kleene: a missing app (null)
            # on a window that is not denied leaves the state as it was.
            if denied[i]:
                blocked = 1
            elif app_valid[k]:
                blocked = 1 if lock[k] else 0
            if not denied[i]:
                cur_focus = row[i]
                cur_focus_ok = True
                cur_fh = fhash[k]
            k += 1
        if tp == c_pause:
            paused = 1
        elif tp == c_resume or tp == c_start:
            paused = 0
        if sw_valid.shape[0] == 0 or sw_valid[i]:
            cur_w = sw[i]
            cur_w_ok = True
        if sh_valid.shape[0] == 0 or sh_valid[i]:
            cur_h = sh[i]
            cur_h_ok = True
        focus[i] = cur_focus
        focus_ok[i] = cur_focus_ok
        fh[i] = cur_fh
        w_out[i] = cur_w
        w_ok[i] = cur_w_ok
        h_out[i] = cur_h
        h_ok[i] = cur_h_ok
        ex = blocked == 1 or paused == 1 or tp == c_idle or tp == c_pause
        excluded[i] = ex
        # The time step to the previous row of the frame. A session's first
        # row starts a work session anyway, and is never a clock jump: the row
        # before it is another session's, on another clock.
        dt_ok = i > 0 and (t_valid.shape[0] == 0 or (t_valid[i] and t_valid[i - 1]))
        dt = t[i] - t[i - 1] if dt_ok else 0
        jump = dt_ok and dt < 0 and not first
        clock_jump[i] = jump
        new_ws = (
            first
            or jump
            or (dt_ok and dt > gap_ns)
            or tp == c_start
            or tp == c_resume
            or tp == c_active
            or (i > 0 and excluded[i - 1] and not ex)
        )
        switched = False
        # ne_missing with the previous row's carried hash.
        if is_focus and i > 0 and (focus_ok[i] != focus_ok[i - 1] or (focus_ok[i] and fh[i] != fh[i - 1])):
            switched = True
        new_task = new_ws or switched or (dt_ok and dt > task_ns)
        if new_ws:
            ws += 1
        if new_task:
            task += 1
        ws_out[i] = ws
        task_out[i] = task
    return focus, focus_ok, fh, w_out, w_ok, h_out, h_ok, excluded, clock_jump, ws_out, task_out
