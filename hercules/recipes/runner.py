"""Run a recipe: load the backbone, add memory, apply PEFT, train, evaluate, compare with the backbone.

Everything is written to the run folder ``output_dir/name``: ``recipe.yaml`` (resolved), ``metrics.jsonl`` and the
plots, ``checkpoints/``, ``model/`` (the trained model), ``eval/<model|backbone>/`` (results, predictions,
heatmaps) and ``summary.json``. Under ``accelerate launch`` every process trains; the main process evaluates.

Examples:
    >>> from hercules.recipes import load_recipe, run_recipe
    >>> summary = run_recipe(load_recipe("recipes/quickstart.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console

from hercules.recipes.schema import BackboneSettings, Recipe
from hercules.training.run_folder import RunLock, refuse_previous_run
from hercules.training.serialize import write_json

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_backbone(settings: BackboneSettings, seed: int = 0) -> tuple[torch.nn.Module, Any]:
    """``(model, tokenizer)`` for a backbone name (``tiny:<family>`` gives a tiny random model, byte tokenizer)."""
    if settings.name.startswith("tiny:"):
        from hercules.backbones.tiny import tiny_model
        from hercules.backbones.tokenizer import byte_tokenizer

        model = tiny_model(settings.name.removeprefix("tiny:"), seed=seed).to(_DTYPES[settings.dtype])
        return model, byte_tokenizer()
    from hercules.backbones.pretrained import load_pretrained

    return load_pretrained(settings.name, dtype=_DTYPES[settings.dtype])


def build_model(recipe: Recipe) -> tuple[torch.nn.Module, Any]:
    """Backbone, then memory (``augment``), then what trains (``peft``; memory only when it is left out)."""
    model, tokenizer = load_backbone(recipe.backbone, recipe.seed)
    if recipe.augment is not None:
        from hercules.injection.augment import augment

        torch.manual_seed(recipe.seed)
        model = augment(model, recipe.augment)
    peft = recipe.peft
    if peft is None and recipe.augment is not None and recipe.training is not None:
        from hercules.injection.peft import PeftSettings

        peft = PeftSettings(preset="memory")
    if peft is not None:
        from hercules.injection.peft import apply_peft

        model = apply_peft(model, peft)
    return model, tokenizer


def trainable_summary(model: torch.nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters": total, "trainable": trainable}


def _train(recipe: Recipe, model: torch.nn.Module, tokenizer: Any, run_dir: Path) -> dict[str, Any]:
    from hercules.recipes.data import build_items
    from hercules.training import Trainer

    train_items, val_items = build_items(recipe.data, tokenizer, seed=recipe.seed)
    logger.info("training on %d sequences, validating on %d", len(train_items), len(val_items))
    eval_fn = None
    if recipe.evaluation is not None and recipe.training.babilong_every:
        eval_fn = _periodic_babilong(recipe, tokenizer, run_dir)
    trainer = Trainer(model, recipe.training, train_items, run_dir, val_items=val_items,
                      pad_token_id=_pad_id(tokenizer), seed=recipe.seed, tracking=recipe.tracking,
                      eval_fn=eval_fn, diagnostics_fn=_diagnostics_fn(recipe),
                      config_for_trackers=recipe.summary())
    result = trainer.train()
    model = trainer.unwrapped_model()
    if trainer.acc.is_main_process:
        _save_model(recipe, model, tokenizer, run_dir / "model")
    return {"model": model, "steps": result.steps, "skipped_steps": result.skipped,
            "train_loss": result.train_loss, "best_val_loss": result.best_val_loss,
            "is_main": trainer.acc.is_main_process, "trainer": trainer}


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad or 0)


def _diagnostics_fn(recipe: Recipe):
    if recipe.augment is None:
        return None
    from hercules.injection.diagnostics import log_diagnostics
    from hercules.training.trainer import default_diagnostics

    def fn(model: torch.nn.Module) -> dict[str, float]:
        out = default_diagnostics(model, recipe.training)
        out.update({f"diag/{k}": v for k, v in log_diagnostics(model).items()})
        return out

    return fn


def _periodic_babilong(recipe: Recipe, tokenizer: Any, run_dir: Path):
    from hercules.evaluation import evaluate_babilong

    def fn(model: torch.nn.Module, step: int) -> dict[str, float]:
        settings = recipe.evaluation.model_copy(update={"progress": False})
        results = evaluate_babilong(model, tokenizer, settings, run_dir / "eval" / f"step-{step:08d}")
        model.train()
        return {"babilong_mean": _mean_accuracy(results)}

    return fn


def _save_model(recipe: Recipe, model: torch.nn.Module, tokenizer: Any, folder: Path) -> None:
    """The trained model and its tokenizer: ``save_augmented`` with memory (only the added and LoRA weights when
    the backbone can be loaded again by name), else ``save_pretrained`` (a PEFT model saves its adapters)."""
    if recipe.augment is None:
        for config in getattr(model, "peft_config", {}).values():  # adapters name the backbone as the recipe does,
            config.base_model_name_or_path = recipe.backbone.name  # not by a cache path of this machine
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return
    from hercules.injection.io import save_augmented

    full = recipe.backbone.name.startswith("tiny:") or (recipe.peft is not None and recipe.peft.preset == "full")
    save_augmented(model, folder, with_backbone=full, backbone=recipe.backbone.name, tokenizer=tokenizer)


def _mean_accuracy(results: dict[str, Any]) -> float | None:
    values = [v for per_len in results["accuracy"].values() for v in per_len.values() if v is not None]
    return sum(values) / len(values) if values else None


def _evaluate_once(model: torch.nn.Module, tokenizer: Any, recipe: Recipe, out: Path, identity: dict,
                   may_resume: bool) -> dict[str, Any]:
    """Evaluate into ``out``, reusing its predictions only when the same model made them.

    The evaluator resumes by its own settings alone; a run folder also records what was evaluated
    (``evaluated.json``), so a changed backbone or recipe, or a model trained in this invocation, starts afresh.
    """
    from hercules.evaluation import evaluate_babilong

    record = out / "evaluated.json"
    same = may_resume and record.exists() and json.loads(record.read_text()) == identity
    settings = recipe.evaluation.model_copy(update={"resume": recipe.evaluation.resume and same})
    out.mkdir(parents=True, exist_ok=True)
    write_json(record, identity)
    return evaluate_babilong(model, tokenizer, settings, out)


def _evaluate(recipe: Recipe, model: torch.nn.Module, tokenizer: Any, run_dir: Path, console: Console,
              trained_now: bool) -> dict:
    from hercules.evaluation.report import comparison_table

    named = {}
    label = "hercules" if recipe.augment is not None or recipe.training is not None else "backbone"
    identity = recipe.model_dump(mode="json", exclude={"evaluation", "tracking", "compare_with_backbone"})
    if label == "backbone":
        identity = {"backbone": recipe.backbone.model_dump(mode="json")}
    named[label] = _evaluate_once(model, tokenizer, recipe, run_dir / "eval" / label, identity, not trained_now)
    if recipe.compare_with_backbone:
        del model
        base, base_tok = load_backbone(recipe.backbone, recipe.seed)
        named["backbone"] = _evaluate_once(base, base_tok, recipe, run_dir / "eval" / "backbone",
                                           {"backbone": recipe.backbone.model_dump(mode="json")}, True)
        named = {"backbone": named["backbone"]} | {k: v for k, v in named.items() if k != "backbone"}
    if len(named) > 1:
        for length in recipe.evaluation.lengths:
            console.print(comparison_table(named, length))
    return {name: {"mean_accuracy": _mean_accuracy(res), "accuracy": res["accuracy"]} for name, res in named.items()}


def _recall(recipe: Recipe, model: torch.nn.Module, tokenizer: Any) -> dict[str, dict[str, float]]:
    """Recall accuracy by ``pairs/gap`` cell: as trained (segments, or whole samples for the full-attention
    twin) and, for a model with memory, with its memory switched off."""
    from hercules.data.recall import recall_items
    from hercules.evaluation.recall import recall_accuracy

    settings, data = recipe.recall_evaluation, recipe.data
    items = [
        item
        for pairs in settings.pairs
        for gap in settings.gaps
        for item in recall_items(settings.samples, pairs, gap, data.segment_length, len(tokenizer),
                                 recipe.seed + 2000, num_keys=data.num_keys, num_values=data.num_values)
    ]
    modes = {"as_trained": "full_attention" if data.full_attention else "memory"}
    if recipe.augment is not None:
        modes["memory_off"] = "no_memory"
    out = {}
    for name, mode in modes.items():
        acc = recall_accuracy(model, items, mode, settings.batch_size)
        out[name] = {f"{pairs}/{gap}": value for (pairs, gap), value in acc.items()}
    out["chance"] = 1 / data.num_values
    return out


def _compare_twins(recipe: Recipe, summary: dict[str, Any], twins: dict[str, dict], console: Console) -> None:
    """One table: the model, its twins and the backbone; then how the memory's gates moved in training."""
    from hercules.recipes.twins import babilong_rows, diagnostics_moves, gates_table, recall_table

    if "recall" in summary:
        named = {"model": summary["recall"]["as_trained"]}
        named |= {name: twin["recall"]["as_trained"] for name, twin in twins.items() if "recall" in twin}
        chance = f"chance {100 * summary['recall']['chance']:.1f}%"
        console.print(recall_table(named, f"{recipe.name}: recall accuracy (%), {chance}"))
        from hercules.evaluation.comparison_plot import recall_figure, write_figure

        figure = recall_figure(named, summary["recall"]["chance"], str(recipe.run_dir()), pairs=recipe.data.pairs)
        summary["recall_figure"] = str(write_figure(figure, recipe.run_dir() / "recall.png"))
    if "evaluation" in summary:
        evaluation = summary["evaluation"]
        named = {"model": next(v for k, v in evaluation.items() if k != "backbone")}
        named |= {name: next(iter(twin["evaluation"].values())) for name, twin in twins.items()
                  if "evaluation" in twin}
        if "backbone" in evaluation:
            named["backbone"] = evaluation["backbone"]
        console.print(babilong_rows(named, f"{recipe.name}: BABILong accuracy (%)"))
    moves = diagnostics_moves(recipe.run_dir() / "metrics.jsonl")
    summary["memory_diagnostics"] = {k: list(v) for k, v in moves.items()}
    if moves:
        console.print(gates_table(moves))


def run_recipe(recipe: Recipe, console: Console | None = None) -> dict[str, Any]:
    """Run every stage the recipe enables; returns (and writes) ``summary.json``.

    The run folder is locked for the whole run (:class:`~hercules.training.run_folder.RunLock`), and a training
    run without ``training.resume`` is refused when the folder already holds an earlier run.
    """
    run_dir = recipe.run_dir()
    is_main = os.environ.get("RANK", "0") == "0"  # under accelerate launch, only the main process locks
    with RunLock(run_dir) if is_main else contextlib.nullcontext():
        if recipe.training is not None and not recipe.training.resume:
            refuse_previous_run(run_dir)
        return _run(recipe, console or Console(), run_dir)


def _run(recipe: Recipe, console: Console, run_dir: Path) -> dict[str, Any]:
    start = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.summary(), sort_keys=False))
    torch.manual_seed(recipe.seed)
    model, tokenizer = build_model(recipe)
    summary: dict[str, Any] = {"name": recipe.name, "run_dir": str(run_dir), **trainable_summary(model)}
    is_main = True
    if recipe.training is not None:
        trained = _train(recipe, model, tokenizer, run_dir)
        model, is_main = trained.pop("model"), trained.pop("is_main")
        trainer = trained.pop("trainer")
        summary["training"] = trained
    if recipe.evaluation is not None and is_main:
        summary["evaluation"] = _evaluate(recipe, model, tokenizer, run_dir, console,
                                          trained_now=recipe.training is not None)
    if recipe.recall_evaluation is not None and is_main:
        summary["recall"] = _recall(recipe, model, tokenizer)
    if recipe.baselines:
        from hercules.recipes.twins import twin_recipe

        del model
        twins = {name: run_recipe(twin_recipe(recipe, name), console) for name in recipe.baselines}
        summary["twins"] = {name: str(twin["run_dir"]) for name, twin in twins.items()}
        if is_main:
            _compare_twins(recipe, summary, twins, console)
    summary["wall_time_s"] = round(time.perf_counter() - start, 1)
    if is_main:
        write_json(run_dir / "summary.json", summary)
    if recipe.training is not None:
        trainer.acc.wait_for_everyone()
    return summary
