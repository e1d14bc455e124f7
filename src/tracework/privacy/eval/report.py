"""Tables (rich) and privacy-vs-utility plots (PNG) of evaluation results."""

from __future__ import annotations

from pathlib import Path


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _params(p: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items()) or "-"


_SHORT = {"max_delay_ms": "max", "hesitation_ms": "hes", "speed_jitter": "jit", "strength": "s", "retime": "rt"}


def _label(name: str, p: dict) -> str:
    """A short point label for plots (only the swept parameters)."""
    vals = " ".join(f"{_SHORT[k]}={v:g}" if isinstance(v, float) else f"{_SHORT[k]}={v}"
                    for k, v in p.items() if k in _SHORT)
    return f"{name} {vals}".strip()


def typing_table(rows):
    """Rich table of typing evaluation rows (see typing_eval.evaluate)."""
    from rich.table import Table

    chance = rows[0].ident.chance_top1
    t = Table(title=f"Typing identification among {rows[0].ident.n_people} people "
                    f"(chance top-1 {_pct(chance)}, top-5 {_pct(rows[0].ident.chance_top5)}); adaptive attacker")
    for col in ("anonymizer", "params", "top-1 sentence", "top-5 sentence", "top-1 person", "top-5 person",
                "x chance (sent.)", "speed err (median)", "KS hold", "KS interval", "order kept"):
        t.add_column(col, justify="right" if col not in ("anonymizer", "params") else "left")
    for r in rows:
        i, u = r.ident, r.util
        t.add_row(r.name, _params(r.params), _pct(i.top1_sentence), _pct(i.top5_sentence), _pct(i.top1_person),
                  _pct(i.top5_person), f"{i.top1_sentence / chance:.1f}x",
                  _pct(u.speed_median_rel_error) if u else "-", f"{u.ks_hold:.3f}" if u else "-",
                  f"{u.ks_interval:.3f}" if u else "-", _pct(u.order_preserved) if u else "-")
    return t


def cursor_table(rows):
    """Rich table of cursor evaluation rows (see cursor_eval.evaluate)."""
    from rich.table import Table

    i0 = rows[0].ident
    t = Table(title=f"Mouse identification among {i0.n_users} users (chance top-1 {_pct(i0.chance_top1)}); "
                    "test unit: block of actions from held-out sessions; adaptive attacker")
    for col in ("anonymizer", "params", "top-1", "top-5", "AUC (ovr)", "endpoint err px", "duration err",
                "path-length ratio", "real-vs-anon AUC"):
        t.add_column(col, justify="right" if col not in ("anonymizer", "params") else "left")
    for r in rows:
        i, u = r.ident, r.util
        t.add_row(r.name, _params(r.params), _pct(i.top1), _pct(i.top5), f"{i.auc:.3f}",
                  f"{u.endpoint_error_px:g}" if u else "-", _pct(u.duration_median_rel_error) if u else "-",
                  f"{u.path_length_ratio:.2f}" if u else "-", f"{u.real_vs_anon_auc:.3f}" if u else "-")
    return t


def _plot(points, chance, xlabel, ylabel, title, path: Path, raw_acc):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for x, y, label in points:
        ax.scatter([x], [100 * y])
        ax.annotate(label, (x, 100 * y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.axhline(100 * chance, linestyle="--", color="grey", label="chance")
    ax.axhline(100 * raw_acc, linestyle=":", color="red", label="raw data")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def typing_plot(rows, path: Path) -> None:
    """Identification (top-1 per sentence) against median typing-speed error."""
    pts = [(100 * r.util.speed_median_rel_error, r.ident.top1_sentence, _label(r.name, r.params))
           for r in rows if r.util]
    _plot(pts, rows[0].ident.chance_top1, "median typing-speed error (%)", "top-1 identification (%)",
          "Typing: privacy vs utility (lower-left is better)", path, rows[0].ident.top1_sentence)


def cursor_plot(rows, path: Path) -> None:
    """Identification (top-1 per block) against the real-vs-anonymized path AUC."""
    pts = [(r.util.real_vs_anon_auc, r.ident.top1, _label(r.name, r.params)) for r in rows if r.util]
    _plot(pts, rows[0].ident.chance_top1, "real-vs-anonymized path classifier AUC (0.5 = indistinguishable)",
          "top-1 identification (%)", "Cursor: privacy vs realism", path, rows[0].ident.top1)
