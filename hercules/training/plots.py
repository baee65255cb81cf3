"""The run's figures from ``metrics.jsonl``: ``loss_curve.png`` and ``memory_diagnostics.png``.

Each figure says which run it shows; each panel of the diagnostics is titled in words (not by its metric name),
with the layer it belongs to, and labelled axes. The learning-rate panels say which parameter group they follow
and the schedule.

Examples:
    >>> records = [{"step": s, "kind": "train", "loss": 3 - s / 10, "lr": 1e-3, "diag/layer2/theta": 0.01}
    ...            for s in range(1, 4)]
    >>> fig = diagnostics_figure(records, run="demo")
    >>> len(fig.axes), fig.axes[1].get_title()
    (2, 'layer 2: inner learning rate θ (mean)')
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import Any

# metric name → (panel title, y-axis label)
LAYER_METRICS = {
    "gate_mean": ("retrieval gate g (mean)", "g"),
    "gate_std": ("retrieval gate g (std over channels, tokens)", "g"),
    "contribution": ("memory's share ‖g⊙m‖ / ‖base output‖", "ratio"),
    "theta": ("inner learning rate θ (mean)", "θ"),
    "eta": ("momentum η (mean)", "η"),
    "alpha": ("forgetting α (mean)", "α"),
    "surprise_norm": ("surprise (norm of the last momentum increment)", "L2 norm"),
    "weight_norm": ("memory weights (norm)", "L2 norm"),
    "momentum_norm": ("memory momentum (norm)", "L2 norm"),
}
GROUPS = {"main": "memory/injection", "main_no_decay": "memory/injection 1-D (no weight decay)",
          "lora": "LoRA", "lora_no_decay": "LoRA 1-D (no weight decay)"}


def panel_labels(key: str, schedule: str = "") -> tuple[str, str]:
    """``(title, y label)`` of a training-record key such as ``diag/layer29/theta`` or ``lora_lr``."""
    sched = f"; {schedule}" if schedule else ""
    if key == "lr":
        return f"learning rate: memory/injection\n(training.lr{sched})", "learning rate"
    if key == "lora_lr":
        return f"learning rate: LoRA\n(training.lora_lr{sched})", "learning rate"
    if key == "grad_norm":
        return "gradient norm, all trainable parameters (before clipping)", "L2 norm"
    name = key.removeprefix("diag/")
    layer = re.fullmatch(r"layer(\d+)/(.+)", name)
    if layer:
        title, unit = LAYER_METRICS.get(layer.group(2), (layer.group(2).replace("_", " "), "value"))
        return f"layer {layer.group(1)}: {title}", unit
    if name.startswith("param_norm/"):
        group = name.removeprefix("param_norm/")
        return f"parameter norm: {GROUPS.get(group, group)}", "L2 norm"
    return name.replace("_", " ").replace("/", ": "), "value"


def schedule_text(schedule: Any) -> str:
    """A :class:`~hercules.training.config.ScheduleSettings` in words: ``cosine decay to 0.1× peak, 10 warm-up
    steps``."""
    ratio = f"{schedule.min_lr_ratio:g}× peak" if schedule.min_lr_ratio else "0"
    text = schedule.kind if schedule.kind == "constant" else f"{schedule.kind} decay to {ratio}"
    return text + (f", {schedule.warmup_steps} warm-up steps" if schedule.warmup_steps else "")


def _order(key: str) -> tuple[int, str]:
    """Learning rates and gradient norm first, then parameter norms, then the layers' panels."""
    first = ("lr", "lora_lr", "grad_norm")
    return (first.index(key), "") if key in first else (3 if "param_norm" in key else 4, key)


def _series(train: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    return [(r["step"], r[key]) for r in train if isinstance(r.get(key), (int, float))]


def constant_diagnostics(records: list[dict[str, Any]]) -> dict[str, float]:
    """The per-layer diagnostics (``diag/layerN/...``) that never change over the run, with their value: an update
    rule without momentum keeps η at 0, a memory without gate keeps the gate at 1. A flat panel says nothing that
    one number does not. Returns ``{key: value}``."""
    train = [r for r in records if r.get("kind") == "train"]
    series = {k: _series(train, k) for r in train for k in r if re.fullmatch(r"diag/layer\d+/.+", k)}
    return {k: pts[0][1] for k, pts in sorted(series.items()) if len(pts) > 1 and len({v for _, v in pts}) == 1}


def _constants_note(constants: dict[str, float]) -> str:
    return "constant throughout, not drawn: " + "; ".join(f"{panel_labels(k)[0]} = {v:.3g}"
                                                           for k, v in constants.items())


def diagnostics_figure(records: list[dict[str, Any]], run: str = "", schedule: str = "") -> Any:
    """One panel per diagnostic of the training records (``diag/*``, ``grad_norm``, ``lr``, ``lora_lr``); a
    per-layer diagnostic that never changes gets no panel, only its value in a footnote."""
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("kind") == "train"]
    constants = constant_diagnostics(records)
    keys = sorted({k for r in train for k in r if (k.startswith("diag/") or k in ("grad_norm", "lr", "lora_lr"))
                   and k not in constants}, key=_order)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 2.9 * rows + 0.6), squeeze=False,
                             layout="constrained")
    for ax, key in zip(axes.flat, keys, strict=False):
        pts = _series(train, key)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1)
        title, unit = panel_labels(key, schedule)
        ax.set_title("\n".join(textwrap.fill(line, 46) for line in title.split("\n")), fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="y", useOffset=False)  # an offset label would sit on the panel's title
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.remove()
    fig.suptitle(f"Memory diagnostics during training{f': run {run}' if run else ''}", fontsize=11)
    if constants:  # a footnote, wrapped to the figure's width (about 16 characters per inch at 8 points)
        fig.supxlabel("\n".join(textwrap.wrap(_constants_note(constants), int(4.6 * cols * 16))), fontsize=8)
    return fig


def loss_figure(records: list[dict[str, Any]], run: str = "") -> Any:
    """Training loss per logged step and validation loss."""
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("kind") == "train" and isinstance(r.get("loss"), (int, float))]
    val = [r for r in records if r.get("kind") == "val"]
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    if train:
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="training (logged steps)", lw=1)
    if val:
        ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (cross-entropy, nats per token)")
    ax.set_title(f"Loss{f': run {run}' if run else ''}", fontsize=11)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot_run(records: list[dict[str, Any]], out_dir: Path, run: str = "", schedule: str = "") -> list[Path]:
    """Write ``loss_curve.png`` (training + validation loss) and ``memory_diagnostics.png``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    run = run or Path(out_dir).name
    train = [r for r in records if r.get("kind") == "train"]
    if any(isinstance(r.get("loss"), (int, float)) for r in train) or any(r.get("kind") == "val" for r in records):
        fig = loss_figure(records, run)
        written.append(Path(out_dir) / "loss_curve.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    if any(k.startswith(("diag/", "grad_norm", "lr")) for r in train for k in r):
        fig = diagnostics_figure(records, run, schedule)
        written.append(Path(out_dir) / "memory_diagnostics.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
