"""Fair baselines: twins of a recipe trained on the same data for the same steps, and one table for all of them.

A claim that memory helps compares the model with memory against the same model without it, trained the same
way (same data, steps, schedule, LoRA), never against an untrained backbone. ``baselines`` in a recipe names the
twins; each is the recipe with one thing changed, run in ``<run>/twins/<name>/``:

- ``no_memory``: no ``augment`` (with ``memory_lora`` this is LoRA only);
- ``full_attention``: no ``augment``, and each recall sample read as one segment (attention sees everything).

:func:`comparison_rows` lays out the model, its twins and (when compared) the plain backbone as rows of one
table, with the memory's gates and contribution at the start and end of training beside them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.table import Table

from hercules.recipes.schema import Baseline, Recipe

ROW_NAMES = {
    "model": "with memory (this recipe)",
    "no_memory": "no memory, same training (twin)",
    "full_attention": "full attention, same training",
    "backbone": "plain backbone, untrained",
}


def twin_recipe(recipe: Recipe, baseline: Baseline) -> Recipe:
    """The recipe of one twin: the same recipe without memory (and, for ``full_attention``, whole samples)."""
    update: dict[str, Any] = {
        "name": baseline, "output_dir": recipe.run_dir() / "twins", "augment": None, "baselines": [],
        "compare_with_backbone": False,
    }
    if baseline == "full_attention":
        update["data"] = recipe.data.model_copy(update={"full_attention": True})
    return recipe.model_copy(update=update)


def diagnostics_moves(metrics_path: Path) -> dict[str, tuple[float, float]]:
    """``{metric: (first, last)}`` of the memory's gate and contribution diagnostics in a run's metrics."""
    from hercules.training.tracking import MetricsLog

    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for record in MetricsLog(metrics_path, enabled=False).read():  # a line torn by a kill is skipped there
        if record.get("kind") != "train":
            continue
        for key, value in record.items():
            if key.startswith("diag/") and key.endswith(("gate_mean", "contribution")) and _finite(value):
                first.setdefault(key, value)
                last[key] = value
    return {k: (first[k], last[k]) for k in sorted(last)}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


SHORT_NAMES = {"model": "memory", "no_memory": "no memory", "full_attention": "full attn", "backbone": "backbone"}


def recall_table(named: dict[str, dict[str, float]], title: str) -> Table:
    """Rows: ``pairs/gap`` cells (N pairs, G filler segments); columns: models; values: recall accuracy (%).
    Narrow whatever the grid: one column per model."""
    cells = sorted({cell for res in named.values() for cell in res}, key=lambda c: tuple(map(int, c.split("/"))))
    table = Table(title=title, caption="; ".join(f"{SHORT_NAMES.get(n, n)}: {ROW_NAMES.get(n, n)}" for n in named))
    table.add_column("pairs N", justify="right")
    table.add_column("gap G", justify="right")
    for name in named:
        table.add_column(SHORT_NAMES.get(name, name), justify="right")
    for cell in cells:
        pairs, gap = cell.split("/")
        table.add_row(pairs, gap, *(_pct(res.get(cell)) for res in named.values()))
    return table


def babilong_rows(named: dict[str, dict[str, Any]], title: str) -> Table:
    """Rows: models; columns: ``task@length``; values: BABILong accuracy (%)."""
    first = next(iter(named.values()))
    columns = [(t, n) for t in first["accuracy"] for n in first["accuracy"][t]]
    table = Table(title=title)
    table.add_column("model")
    for task, length in columns:
        table.add_column(f"{task} {length}", justify="right")
    for name, res in named.items():
        table.add_row(ROW_NAMES.get(name, name),
                      *(_pct(res["accuracy"].get(t, {}).get(n)) for t, n in columns))
    return table


def gates_table(moves: dict[str, tuple[float, float]]) -> Table:
    table = Table(title="memory gates and contribution during training")
    for column in ("diagnostic", "first step", "last step"):
        table.add_column(column, justify="left" if column == "diagnostic" else "right")
    for key, (start, end) in moves.items():
        table.add_row(key.removeprefix("diag/"), f"{start:.3g}", f"{end:.3g}")
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"
