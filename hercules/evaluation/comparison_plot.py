"""The figure that compares a model with memory against its twins on recall (:mod:`hercules.evaluation.recall`):
accuracy against the gap between the pairs and the queries (in filler segments) at one number of pairs, and
against the number of pairs (a capacity curve) at the largest gap, one line per model, with chance drawn.
(BABILong runs compare in a table; a BABILong accuracy-against-length figure does not exist yet.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROW_LABELS = {
    "model": "with memory",
    "no_memory": "no memory (twin)",
    "full_attention": "full attention (twin)",
    "backbone": "backbone, untrained",
}


def recall_figure(named: dict[str, dict[str, float]], chance: float, run: str, pairs: int | None = None) -> Any:
    """``named``: model → ``{"N/G": accuracy}``. Left: accuracy by gap at ``pairs`` (the most common N by
    default); right: accuracy by number of pairs at the largest gap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted({tuple(map(int, c.split("/"))) for res in named.values() for c in res})
    all_pairs, gaps = sorted({n for n, _ in cells}), sorted({g for _, g in cells})
    pairs = pairs if pairs is not None else max(all_pairs, key=lambda n: sum(1 for c in cells if c[0] == n))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120, layout="constrained")
    for name, res in named.items():
        label = ROW_LABELS.get(name, name)
        left.plot(gaps, [_pct(res.get(f"{pairs}/{g}")) for g in gaps], marker="o", label=label)
        right.plot(all_pairs, [_pct(res.get(f"{n}/{gaps[-1]}")) for n in all_pairs], marker="o", label=label)
    for ax in (left, right):
        ax.axhline(100 * chance, color="grey", linestyle=":", label=f"chance ({100 * chance:.1f} %)")
        ax.set_ylim(-3, 103)
        ax.set_ylabel("recall accuracy (%)")
        ax.grid(alpha=0.3)
    left.set_xlabel("filler segments between pairs and queries")
    left.set_title(f"{pairs} pairs: accuracy against distance")
    right.set_xscale("log", base=2)
    right.set_xticks(all_pairs, [str(n) for n in all_pairs])
    right.set_xlabel("key-value pairs (log scale)")
    right.set_title(f"capacity at {gaps[-1]} filler segments")
    right.legend(loc="best", fontsize="small")
    fig.suptitle(f"Associative recall across segments: {run}")
    return fig


def write_figure(fig: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _pct(value: float | None) -> float:
    return float("nan") if value is None else 100 * value
