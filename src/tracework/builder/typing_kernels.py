"""Compiled loop (numba) behind :func:`tracework.builder.keystrokes.typing_fields`.

One pass over the sessionized rows, session by session in the output order
(session string), cuts the typing fields, and rebuilds each field's text,
edit history and correction runs from its keys:

- a field without caret moves or word deletes with the clamped depth of
  :mod:`tracework.builder.reference` (text depth after each key, a
  backspace on empty text does nothing, a token survives when the depth
  never falls below it later; one placeholder per redacted span);
- a field with them by replaying the keys on a token buffer with a caret,
  as the reference's ``_replay_field`` does in Python.

Strings never enter the kernel: each key is described by small integer
codes computed in Polars per key-down row (its category, which named key it
is, its token's id and whether the token is whitespace), and the text and
edits come back as indices of key rows, from which the strings are gathered.
"""

from __future__ import annotations

import numba
import numpy as np

# Key categories (actions.classify_keys; 0: none).
K_TYPE, K_BACKSPACE, K_KEY, K_HOTKEY, K_MODIFIER = 1, 2, 3, 4, 5
# Named keys the fields care about (0: any other).
N_BACKSPACE, N_DELETE, N_LEFT, N_RIGHT, N_HOME, N_END, N_UP, N_DOWN, N_FIELD_END = 1, 2, 3, 4, 5, 6, 7, 8, 9


@numba.njit(cache=True, nogil=True)
def typing_kernel(
    typ: np.ndarray,
    excluded: np.ndarray,
    sid: np.ndarray,
    ws: np.ndarray,
    task: np.ndarray,
    seq: np.ndarray,
    t: np.ndarray,
    block_start: np.ndarray,
    block_kd: np.ndarray,
    block_order: np.ndarray,
    kcat: np.ndarray,
    kname: np.ndarray,
    ctrl: np.ndarray,
    red: np.ndarray,
    red_truthy: np.ndarray,
    red_id: np.ndarray,
    tok_id: np.ndarray,
    tok_space: np.ndarray,
    c_key_down: int,
    c_key_up: int,
    c_move: int,
    boundary_type: np.ndarray,
):
    """Typing fields of the rows.

    Rows are grouped in session blocks (``block_start``: first row of each,
    plus the end; ``block_kd``: key-down rows before it) taken in
    ``block_order``. Key-down rows have one entry each, in row order, in
    ``kcat`` .. ``tok_space``; ``boundary_type[c]`` says event type code ``c``
    ends a field. Returns ``ok`` (False: a session's seq does not increase,
    use the reference), then per field: first key row, last key row,
    keystrokes, insertions, deletions, redacted keys, caret moved, start
    and end ns, first and last seq, field index; the text as key-down
    indices with offsets; the edits (op 0 insert / 1 delete, pos, key-down
    index of the text or -1, t_ms) with offsets; the correction runs
    (t_ms, length, pause before and whether there is one) with offsets."""
    n_blocks = block_order.shape[0]
    n_kd = kcat.shape[0]
    # Upper bounds, so no array ever grows: a field has a key, a key adds at
    # most one token, one run and (with the word deletes it enables) two
    # edits. np.empty leaves pages untouched until written.
    cap = n_kd + 1
    f_first = np.empty(cap, np.int64)
    f_last = np.empty(cap, np.int64)
    f_keys = np.empty(cap, np.uint32)
    f_ins = np.empty(cap, np.uint32)
    f_del = np.empty(cap, np.uint32)
    f_red = np.empty(cap, np.uint32)
    f_caret = np.empty(cap, np.bool_)
    f_t0 = np.empty(cap, np.int64)
    f_t1 = np.empty(cap, np.int64)
    f_q0 = np.empty(cap, np.int64)
    f_q1 = np.empty(cap, np.int64)
    f_index = np.empty(cap, np.int64)
    text_off = np.zeros(cap + 1, np.int64)
    edit_off = np.zeros(cap + 1, np.int64)
    run_off = np.zeros(cap + 1, np.int64)
    text = np.empty(cap, np.int64)
    e_op = np.empty(2 * cap, np.int8)
    e_pos = np.empty(2 * cap, np.int32)
    e_tok = np.empty(2 * cap, np.int64)
    e_t = np.empty(2 * cap, np.int64)
    r_t = np.empty(cap, np.int64)
    r_len = np.empty(cap, np.int32)
    r_pause = np.empty(cap, np.int64)
    r_pause_ok = np.empty(cap, np.bool_)
    nf = 0
    nt = 0
    ne = 0
    nr = 0
    ok = True
    # The keys of the current field: row and key-down index.
    krow = np.empty(cap, np.int64)
    kidx = np.empty(cap, np.int64)
    depth = np.empty(cap, np.int64)
    buf = np.empty(cap, np.int64)  # replay: key-down indices of the tokens
    for b in range(n_blocks):
        blk = block_order[b]
        r0, r1 = block_start[blk], block_start[blk + 1]
        kd = block_kd[blk]
        index = 0
        nk = 0
        replay = False
        prev = -1  # previous filtered row
        for i in range(r0, r1 + 1):
            # At a boundary (or the block's end) the current field closes.
            end = i == r1
            is_kd = False
            k = 0
            tp = 0
            if not end:
                tp = typ[i]
                is_kd = tp == c_key_down
                if is_kd:
                    k = kd
                    kd += 1
                if excluded[i] or tp == c_key_up or tp == c_move:
                    continue
                if prev >= 0 and seq[i] <= seq[prev]:
                    ok = False
                boundary = (
                    prev < 0
                    or ws[i] != ws[prev]
                    or task[i] != task[prev]
                    or boundary_type[tp]
                    or (is_kd and kname[k] == N_FIELD_END)
                )
                prev = i
            else:
                boundary = True
            if boundary and nk > 0:
                # Close the field of keys krow[:nk].
                first_row = krow[0]
                t0 = t[first_row]
                q0 = seq[first_row]
                q1 = q0
                tmin = t0
                tmax = t0
                n_red = 0
                for a in range(nk):
                    ra = krow[a]
                    q0 = min(q0, seq[ra])
                    q1 = max(q1, seq[ra])
                    tmin = min(tmin, t[ra])
                    tmax = max(tmax, t[ra])
                ins = 0
                dels = 0
                if not replay:
                    # Clamped depth; pos and underflow as the reference.
                    d = 0
                    prev_bs = False
                    for a in range(nk):
                        ka = kidx[a]
                        ra = krow[a]
                        if red[ka]:
                            n_red += 1
                        tm = (t[ra] - tmin) // 1_000_000
                        if kcat[ka] == K_BACKSPACE:
                            dels += 1
                            e_op[ne] = 1
                            e_pos[ne] = -1 if d == 0 else d - 1
                            e_tok[ne] = -1
                            if d > 0:
                                d -= 1
                            if not prev_bs:
                                r_t[nr] = tm
                                r_len[nr] = 0
                                if a > 0:
                                    r_pause[nr] = (t[ra] - t[krow[a - 1]]) // 1_000_000
                                    r_pause_ok[nr] = True
                                else:
                                    r_pause[nr] = 0
                                    r_pause_ok[nr] = False
                                nr += 1
                            r_len[nr - 1] += 1
                            prev_bs = True
                        else:
                            ins += 1
                            d += 1
                            e_op[ne] = 0
                            e_pos[ne] = d - 1
                            e_tok[ne] = ka
                            prev_bs = False
                        e_t[ne] = tm
                        ne += 1
                        depth[a] = d
                    # Survivors: insertions whose depth is never undercut
                    # later (a backward running minimum).
                    low = 1 << 62
                    for a in range(nk - 1, -1, -1):
                        low = min(low, depth[a])
                        buf[a] = 1 if (kcat[kidx[a]] != K_BACKSPACE and low >= depth[a]) else 0
                    last_red = -2  # redacted id of the previous survivor (-1: none)
                    for a in range(nk):
                        if buf[a] == 0:
                            continue
                        ka = kidx[a]
                        rid = red_id[ka] if red[ka] else -1
                        if not (rid >= 0 and rid == last_red):
                            text[nt] = ka
                            nt += 1
                        last_red = rid
                else:
                    # Key-by-key replay on a token buffer with a caret.
                    ntok = 0
                    caret = 0
                    prev_bs = False
                    for a in range(nk):
                        ka = kidx[a]
                        ra = krow[a]
                        if red_truthy[ka]:
                            n_red += 1
                        tm = (t[ra] - t0) // 1_000_000
                        c = kcat[ka]
                        nm = kname[ka]
                        if c == K_TYPE:
                            # One placeholder per redacted span.
                            if not (red_truthy[ka] and caret > 0 and tok_id[buf[caret - 1]] == tok_id[ka]):
                                for q in range(ntok, caret, -1):
                                    buf[q] = buf[q - 1]
                                buf[caret] = ka
                                ntok += 1
                                caret += 1
                            e_op[ne] = 0
                            e_pos[ne] = caret - 1
                            e_tok[ne] = ka
                            e_t[ne] = tm
                            ne += 1
                            ins += 1
                            prev_bs = False
                        elif c == K_BACKSPACE:
                            e_op[ne] = 1
                            e_pos[ne] = caret - 1 if caret > 0 else -1
                            e_tok[ne] = -1
                            e_t[ne] = tm
                            ne += 1
                            if caret > 0:
                                for q in range(caret - 1, ntok - 1):
                                    buf[q] = buf[q + 1]
                                ntok -= 1
                                caret -= 1
                            dels += 1
                            if not prev_bs:
                                r_t[nr] = tm
                                r_len[nr] = 0
                                if a > 0:
                                    r_pause[nr] = (t[ra] - t[krow[a - 1]]) // 1_000_000
                                    r_pause_ok[nr] = True
                                else:
                                    r_pause[nr] = 0
                                    r_pause_ok[nr] = False
                                nr += 1
                            r_len[nr - 1] += 1
                            prev_bs = True
                        elif c == K_HOTKEY:
                            # ctrl+Backspace: whitespace left of the caret, then
                            # the word; ctrl+Delete: the word right of it, then
                            # whitespace. One delete edit per token removed.
                            prev_bs = False
                            j = caret
                            if nm == N_BACKSPACE:
                                while j > 0 and tok_space[buf[j - 1]]:
                                    j -= 1
                                while j > 0 and not tok_space[buf[j - 1]]:
                                    j -= 1
                                for pos in range(caret - 1, j - 1, -1):
                                    e_op[ne] = 1
                                    e_pos[ne] = pos
                                    e_tok[ne] = -1
                                    e_t[ne] = tm
                                    ne += 1
                                w = caret - j
                                for q in range(j, ntok - w):
                                    buf[q] = buf[q + w]
                                ntok -= w
                                dels += w
                                caret = j
                            elif nm == N_DELETE:
                                while j < ntok and not tok_space[buf[j]]:
                                    j += 1
                                while j < ntok and tok_space[buf[j]]:
                                    j += 1
                                for _ in range(j - caret):
                                    e_op[ne] = 1
                                    e_pos[ne] = caret
                                    e_tok[ne] = -1
                                    e_t[ne] = tm
                                    ne += 1
                                w = j - caret
                                for q in range(caret, ntok - w):
                                    buf[q] = buf[q + w]
                                ntok -= w
                                dels += w
                        else:
                            prev_bs = False
                            if nm == N_LEFT:
                                caret = max(0, caret - 1)
                            elif nm == N_RIGHT:
                                caret = min(ntok, caret + 1)
                            elif nm == N_HOME or nm == N_UP:
                                caret = 0
                            elif nm == N_END or nm == N_DOWN:
                                caret = ntok
                            elif nm == N_DELETE and caret < ntok:
                                e_op[ne] = 1
                                e_pos[ne] = caret
                                e_tok[ne] = -1
                                e_t[ne] = tm
                                ne += 1
                                for q in range(caret, ntok - 1):
                                    buf[q] = buf[q + 1]
                                ntok -= 1
                                dels += 1
                    for q in range(ntok):
                        text[nt] = buf[q]
                        nt += 1
                f_first[nf] = first_row
                f_last[nf] = krow[nk - 1]
                f_keys[nf] = nk
                f_ins[nf] = ins
                f_del[nf] = dels
                f_red[nf] = n_red
                f_caret[nf] = replay
                f_t0[nf] = t0 if replay else tmin
                f_t1[nf] = t[krow[nk - 1]] if replay else tmax
                f_q0[nf] = q0
                f_q1[nf] = q1
                f_index[nf] = index
                index += 1
                nf += 1
                text_off[nf] = nt
                edit_off[nf] = ne
                run_off[nf] = nr
            if boundary:
                nk = 0
                replay = False
            if end or not is_kd:
                continue
            c = kcat[k]
            nm = kname[k]
            is_caret = c == K_KEY and N_DELETE <= nm <= N_DOWN
            is_word_delete = c == K_HOTKEY and (nm == N_BACKSPACE or nm == N_DELETE) and ctrl[k]
            if c == K_TYPE or c == K_BACKSPACE or is_caret or is_word_delete:
                krow[nk] = i
                kidx[nk] = k
                nk += 1
                replay = replay or is_caret or is_word_delete
        if kd > n_kd:
            ok = False
    return (
        ok,
        f_first[:nf],
        f_last[:nf],
        f_keys[:nf],
        f_ins[:nf],
        f_del[:nf],
        f_red[:nf],
        f_caret[:nf],
        f_t0[:nf],
        f_t1[:nf],
        f_q0[:nf],
        f_q1[:nf],
        f_index[:nf],
        text[:nt],
        text_off[: nf + 1],
        e_op[:ne],
        e_pos[:ne],
        e_tok[:ne],
        e_t[:ne],
        edit_off[: nf + 1],
        r_t[:nr],
        r_len[:nr],
        r_pause[:nr],
        r_pause_ok[:nr],
        run_off[: nf + 1],
    )
