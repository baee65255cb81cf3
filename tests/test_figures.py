"""The run's figures and tables are readable on their own: titled by run and model, labelled, nothing cut off."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402
from rich.console import Console  # noqa: E402

from hercules.evaluation.report import accuracy_table, heatmap_figure, write_heatmap  # noqa: E402
from hercules.training.plots import diagnostics_figure  # noqa: E402

BACKBONE = {"name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "augmented": False}
MEMORY = BACKBONE | {"augmented": True, "hercules_config": {"injection": {"kind": "mac"}, "layers": [-1]}}


def _results(tasks: int, lengths: int, model: dict) -> dict:
    names, sizes = [f"qa{i + 1}" for i in range(tasks)], ["0k", "1k", "2k", "4k", "8k", "16k", "32k", "64k"][:lengths]
    return {"tasks": names, "lengths": sizes, "model": model, "run": "runs/quickstart/eval/hercules",
            "accuracy": {t: {n: (i + j) % 10 / 10 for j, n in enumerate(sizes)} for i, t in enumerate(names)},
            "counts": {t: {n: 40 for n in sizes} for t in names}}


def _texts_outside(fig) -> list[str]:
    """What the renderer draws outside the figure: each axes with its title, tick and axis labels (its tight
    bounding box), and the figure's own texts such as the title."""
    fig.canvas.draw()
    renderer, box = fig.canvas.get_renderer(), fig.bbox
    drawn = [(ax.get_title() or ax.get_ylabel() or "axes", ax.get_tightbbox(renderer)) for ax in fig.axes]
    drawn += [(t.get_text(), t.get_window_extent(renderer)) for t in fig.get_children()
              if isinstance(t, Text) and t.get_visible() and t.get_text().strip()]
    return [name for name, ext in drawn
            if ext.x0 < box.x0 - 0.5 or ext.y0 < box.y0 - 0.5 or ext.x1 > box.x1 + 0.5 or ext.y1 > box.y1 + 0.5]


@pytest.mark.parametrize(("tasks", "lengths"), [(1, 1), (1, 2), (5, 3), (10, 8)])
def test_heatmap_fits_its_title_labels_and_colour_bar_at_any_grid_size(tmp_path, tasks, lengths):
    results = _results(tasks, lengths, MEMORY)
    fig = heatmap_figure(results)
    fig.set_dpi(120)
    assert _texts_outside(fig) == []
    (ax, bar) = fig.axes
    assert ax.get_xlabel().startswith("context length (k = 1024 tokens") and ax.get_ylabel() == "task"
    assert bar.get_ylabel() == "accuracy (%)"
    plt.close(fig)
    width, height = Image.open(write_heatmap(results, tmp_path / "h.png")).size
    assert width >= 768 and height >= 432  # 6.4 x 3.6 inches at 120 dpi, at least


def test_heatmap_titles_tell_the_model_with_memory_from_the_backbone():
    titles = []
    for model in (MEMORY, BACKBONE):
        fig = heatmap_figure(_results(1, 1, model))
        titles.append(fig.get_suptitle())
        plt.close(fig)
    assert "SmolLM2-135M-Instruct + memory (MAC, last layer)" in titles[0]
    assert "SmolLM2-135M-Instruct, no memory" in titles[1]
    assert all("run runs/quickstart/eval/hercules" in t and "40 samples per cell" in t for t in titles)


def test_memory_diagnostics_panels_are_titled_in_words_and_labelled():
    keys = {"lr": 1e-3, "lora_lr": 5e-4, "grad_norm": 1.0, "diag/param_norm/main": 21.7, "diag/param_norm/lora": 4.3}
    keys |= {f"diag/layer29/{name}": 0.5 for name in (
        "gate_mean", "gate_std", "contribution", "theta", "eta", "alpha", "surprise_norm", "weight_norm",
        "momentum_norm")}
    records = [{"step": s, "kind": "train", "loss": 1.0} | {k: v * (1 + s / 100) for k, v in keys.items()}
               for s in range(1, 6)]
    fig = diagnostics_figure(records, run="quickstart", schedule="cosine decay to 0, 6 warm-up steps")
    fig.set_dpi(110)
    assert fig.get_suptitle() == "Memory diagnostics during training: run quickstart"
    assert len(fig.axes) == len(keys) and _texts_outside(fig) == []
    titles = [ax.get_title().replace("\n", " ") for ax in fig.axes]
    assert titles[0] == "learning rate: memory/injection (training.lr; cosine decay to 0, 6 warm-up steps)"
    assert titles[1].startswith("learning rate: LoRA (training.lora_lr;")
    assert not any("diag/" in t or "_" in t.split("(")[0] for t in titles)  # no raw metric names
    assert all(ax.get_xlabel() == "optimizer step" and ax.get_ylabel() for ax in fig.axes)
    plt.close(fig)


def test_each_accuracy_table_names_its_model_on_one_line_within_80_columns():
    for model, label in ((MEMORY, "SmolLM2-135M-Instruct + memory (MAC, last layer)"),
                         (BACKBONE, "SmolLM2-135M-Instruct, no memory")):
        console = Console(width=80, record=True, file=io.StringIO())
        console.print(accuracy_table(_results(5, 2, model)))
        lines = console.export_text().splitlines()
        assert lines[0].strip() == f"BABILong accuracy (%): {label}" and max(map(len, lines)) <= 80


def test_recall_comparison_figure_fits_and_draws_every_model(tmp_path):
    from hercules.evaluation.comparison_plot import recall_figure, write_figure

    cells = [f"{n}/{g}" for n in (4, 8, 16, 32, 64) for g in (0, 4, 8)]
    named = {name: {c: i / 3 for c in cells} for i, name in enumerate(("model", "no_memory", "full_attention"))}
    fig = recall_figure(named, 1 / 64, "runs/recall-tiny")
    assert _texts_outside(fig) == []
    left, right = fig.axes
    assert len(left.get_lines()) == 4 and len(right.get_lines()) == 4  # three models and chance
    assert [t.get_text() for t in right.get_legend().get_texts()][:3] == [
        "with memory", "no memory (twin)", "full attention (twin)"]
    width, height = Image.open(write_figure(fig, tmp_path / "r.png")).size
    assert width >= 1000 and height >= 450


def test_memory_diagnostics_draw_no_flat_panel_and_name_each_constant_once():
    """A delta rule without gate keeps η, α and the gate fixed: those get one footnote, not six flat panels."""
    records = [{"step": s, "kind": "train", "lr": 1e-3, "grad_norm": 1.0 / s, "diag/layer28/theta": 0.1 * s,
                "diag/layer28/eta": 0.0, "diag/layer29/eta": 0.0, "diag/layer28/gate_mean": 1.0,
                "diag/layer29/theta": 0.2 * s} for s in range(1, 5)]
    fig = diagnostics_figure(records, run="quickstart")
    fig.set_dpi(110)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 4 and not any("momentum" in t or "gate" in t for t in titles)
    note = fig._supxlabel.get_text().replace("\n", " ")
    assert note.startswith("constant throughout, not drawn:")
    assert note.count("layer 28: momentum η (mean) = 0;") == 1 and "layer 29: momentum η (mean) = 0" in note
    assert "layer 28: retrieval gate g (mean) = 1" in note and "_" not in note  # in words, no metric names
    assert _texts_outside(fig) == []
    plt.close(fig)
