"""Results files and views of a BABILong run: results.json, heatmap.png, rich tables, progress bars.

Examples:
    >>> results = {"tasks": ["qa1"], "lengths": ["0k"], "accuracy": {"qa1": {"0k": 0.5}},
    ...            "counts": {"qa1": {"0k": 2}}}
    >>> accuracy_table(results).row_count
    1
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

PRED_METRICS = {"accuracy": "correct", "exact_match": "exact_match", "contains": "contains"}


@contextmanager
def progress_bar(enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over ``total`` samples; yields ``advance(n)`` (a no-op when disabled)."""
    if not enabled:
        yield lambda n: None
        return
    columns = (
        TextColumn("BABILong"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task("eval", total=total)
        yield lambda n: progress.advance(task, n)


def model_identity(model: Any, tokenizer: Any) -> dict[str, Any]:
    """Name, class, size and dtype of the model and its tokenizer, for results.json."""
    config = getattr(model, "config", None)
    params = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else None
    first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return {
        "name_or_path": getattr(config, "_name_or_path", None) or getattr(config, "name_or_path", None),
        "class": type(model).__name__,
        "model_type": getattr(config, "model_type", None),
        "parameters": params,
        "dtype": str(first.dtype) if first is not None else None,
        "augmented": hasattr(model, "hercules_config"),
        "hercules_config": _dump(getattr(model, "hercules_config", None)),
        "tokenizer": getattr(tokenizer, "name_or_path", None) or type(tokenizer).__name__,
        "vocab_size": len(tokenizer) if hasattr(tokenizer, "__len__") else None,
    }


def _dump(config: Any) -> Any:
    return config.model_dump(mode="json") if hasattr(config, "model_dump") else config


def data_identity(samples: dict, settings: Any) -> dict[str, Any]:
    """Source description and a fingerprint (sha256 of every context, question and target) of the samples."""
    digest = hashlib.sha256()
    for key in sorted(samples):
        for s in samples[key]:
            digest.update(f"{s.task}|{s.length}|{s.index}|{s.context}|{s.question}|{s.target}\n".encode())
    any_sample = next((v[0] for v in samples.values() if v), None)
    return {
        **settings.data.model_dump(mode="json"),
        "background_name": any_sample.meta.get("background") if any_sample is not None else None,
        "fingerprint": digest.hexdigest()[:16],
        "seed": settings.seed,
    }


def _table_of(records: dict, cells: list[tuple[str, str]], field: str | None) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for task, length in cells:
        rows = [r for (t, ln, _), r in records.items() if t == task and ln == length]
        if field is None:
            value: Any = len(rows)
        else:
            value = float(np.mean([bool(r[field]) for r in rows])) if rows else None
        table.setdefault(task, {})[length] = value
    return table


def _write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temporary file renamed into place) so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)


def build_results(
    records: dict,
    cells: list[tuple[str, str]],
    model: Any,
    tokenizer: Any,
    settings: Any,
    data: dict,
    wall_s: float,
    out: Path,
    note: str | None = None,
) -> dict[str, Any]:
    """Assemble results from the predictions so far and write ``out/results.json``.

    ``note`` says what kind of result it is when that is not the obvious one (a no-memory baseline).
    """
    tasks = list(dict.fromkeys(t for t, _ in cells))
    lengths = list(dict.fromkeys(length for _, length in cells))
    results: dict[str, Any] = {"tasks": tasks, "lengths": lengths}
    for name, field in PRED_METRICS.items():
        results[name] = _table_of(records, cells, field)
    results["counts"] = _table_of(records, cells, None)
    results["mean_accuracy"] = {
        length: _mean([results["accuracy"][t][length] for t in tasks]) for length in lengths
    }
    results.update(
        run=str(out),
        note=note,
        model=model_identity(model, tokenizer),
        data=data,
        settings=settings.model_dump(mode="json"),
        wall_time_s=round(wall_s, 2),
        torch_threads=torch.get_num_threads(),
        host=platform.node(),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    _write_json(out / "results.json", results)
    return results


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def model_label(results: dict[str, Any]) -> str:
    """The evaluated model in a few words: its name, and whether it has memory (and which injection, where)."""
    model = results.get("model") or {}
    name = Path(str(model.get("name_or_path") or model.get("model_type") or model.get("class") or "model")).name
    config = model.get("hercules_config")
    if not model.get("augmented") or not isinstance(config, dict):
        label = f"{name}, no memory"
    else:
        kind = str((config.get("injection") or {}).get("kind", "memory")).upper()
        layers = config.get("layers") or []
        where = ("all layers" if layers == "all" else "last layer" if layers == [-1]
                 else f"layer{'s' if len(layers) > 1 else ''} " + ",".join(map(str, layers)))
        label = f"{name} + memory ({kind}, {where})"
    return label + (" (no-memory baseline)" if results.get("note") else "")


def accuracy_table(results: dict[str, Any], title: str | None = None) -> Table:
    """A rich table: one row per task, one column per length, accuracy in percent, plus a mean row.

    The title names the model (see :func:`model_label`); the table is as wide as its title, up to 80 columns,
    so that the title stays on one line.
    """
    title = title or f"BABILong accuracy (%): {model_label(results)}"
    table = Table(title=title, min_width=min(len(title) + 2, 80))
    table.add_column("task")
    for length in results["lengths"]:
        table.add_column(length, justify="right")
    rows = [(t, results["accuracy"][t]) for t in results["tasks"]]
    if "mean_accuracy" in results:
        rows.append(("mean", results["mean_accuracy"]))
    for name, values in rows:
        table.add_row(name, *(_pct(values.get(length)) for length in results["lengths"]))
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}"


def comparison_table(named: dict[str, dict[str, Any]], length: str | None = None) -> Table:
    """Accuracy (%) of several runs side by side: rows are tasks, columns are runs (at one length, or the mean)."""
    first = next(iter(named.values()))
    table = Table(title=f"BABILong accuracy (%) at {length or 'mean over lengths'}")
    table.add_column("task")
    for name in named:
        table.add_column(name, justify="right")
    for task in first["tasks"]:
        cells = []
        for res in named.values():
            acc = res["accuracy"].get(task, {})
            cells.append(_pct(acc.get(length) if length else _mean(list(acc.values()))))
        table.add_row(task, *cells)
    return table


def heatmap_title(results: dict[str, Any]) -> str:
    """Two lines: the model (with or without memory) and sample count; the run folder."""
    counts = [n for row in results.get("counts", {}).values() for n in row.values() if n]
    n = "" if not counts else f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    first = f"BABILong accuracy: {model_label(results)}"
    run = results.get("run")
    return first + (f"\nrun {run}" if run else "") + (f", {n} samples per cell" if n else "")


def write_heatmap(results: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`heatmap_figure` as a PNG (120 dpi)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = heatmap_figure(results)
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def heatmap_figure(results: dict[str, Any]) -> Any:
    """A tasks × lengths heatmap of accuracy (%), annotated, in the style of BABILong's figure.

    The figure is at least 6.4 × 3.6 inches whatever the grid, so that its title, axis labels and colour bar fit.
    """
    import matplotlib.pyplot as plt

    tasks, lengths = results["tasks"], results["lengths"]
    grid = np.array(
        [
            [
                np.nan if results["accuracy"][t].get(n) is None else 100 * results["accuracy"][t][n]
                for n in lengths
            ]
            for t in tasks
        ]
    )
    size = (max(6.4, 2.4 + 0.9 * len(lengths)), max(3.6, 1.8 + 0.45 * len(tasks)))
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(lengths)), lengths)
    ax.set_yticks(range(len(tasks)), tasks)
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=10)
    ax.set_xlabel("context length (k = 1024 tokens of background; 0k: the facts only)")
    ax.set_ylabel("task")
    fig.suptitle(heatmap_title(results), fontsize=10, wrap=True)
    fig.colorbar(image, ax=ax, label="accuracy (%)", fraction=0.08)
    return fig


def finish_report(results: dict[str, Any], out: Path, show: bool = True) -> None:
    """Write the heatmap next to results.json and print the accuracy table."""
    write_heatmap(results, out / "heatmap.png")
    if show:
        Console().print(accuracy_table(results))
