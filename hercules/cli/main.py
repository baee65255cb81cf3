"""The ``hercules`` command: recipes, evaluation, components, benchmarks.

Exit codes: 0 success, 2 bad input (invalid recipe or arguments), 1 failure while running.

Examples:
    $ hercules recipe run recipes/quickstart.yaml
    $ hercules recipe validate recipes/*.yaml
    $ hercules eval smollm2-135m --tasks qa1,qa2 --lengths 0k --samples 20
"""

from __future__ import annotations

import contextlib
import importlib
import json
import pkgutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hercules.cli import recipe
from hercules.cli.common import BAD_INPUT, console, default_repr, err_console, exit_codes, type_name
from hercules.evaluation.settings import EvalSettings

app = typer.Typer(
    name="hercules",
    help="Hercules: Titans-style neural memory for pretrained Hugging Face language models.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(recipe.app, name="recipe")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"hercules {version('hercules')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Hercules: Titans-style neural memory for pretrained Hugging Face language models."""


components_app = typer.Typer(help="The registered plugin components.", no_args_is_help=True)
app.add_typer(components_app, name="components")


def _desc(name: str) -> str:
    field = EvalSettings.model_fields[name]
    default = field.default_factory() if field.default_factory else field.default
    shown = ",".join(default) if isinstance(default, list) else default
    return f"{field.description or ''} (default: {shown}, or the recipe's)"


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}/--no-{name.replace('_', '-')}"


@app.command("eval")
def eval_(
    model: Annotated[str | None, typer.Argument(
        help="backbone (hub id, folder, smollm2-135m, gemma3-270m, tiny:<family>) or a folder saved by a recipe "
        "run (run/model); default: the --recipe's backbone", show_default=False)] = None,
    recipe_path: Annotated[Path | None, typer.Option(
        "--recipe", help="take the evaluation settings (and the default model) from this recipe; the options "
        "given here override them", show_default=False)] = None,
    tasks: Annotated[str | None, typer.Option(help=_desc("tasks") + " (comma-separated)", show_default=False)] = None,
    lengths: Annotated[str | None, typer.Option(help=_desc("lengths") + " (comma-separated)",
                                                show_default=False)] = None,
    samples: Annotated[int | None, typer.Option(help=_desc("samples_per_task"), show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option(help=_desc("batch_size"), show_default=False)] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help=_desc("max_new_tokens"), show_default=False)] = None,
    segment_length: Annotated[int | None, typer.Option(help=_desc("segment_length"), show_default=False)] = None,
    max_input_tokens: Annotated[int | None, typer.Option(help=_desc("max_input_tokens"), show_default=False)] = None,
    few_shot: Annotated[bool | None, typer.Option(_flag("few_shot"), help=_desc("few_shot"),
                                                  show_default=False)] = None,
    chat_template: Annotated[bool | None, typer.Option(_flag("chat_template"), help=_desc("use_chat_template"),
                                                       show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help=_desc("seed"), show_default=False)] = None,
    resume: Annotated[bool | None, typer.Option(_flag("resume"), help=_desc("resume"), show_default=False)] = None,
    source: Annotated[str | None, typer.Option(help="BABILong source: procedural | babi | hub | local "
                                               "(default: procedural, or the recipe's)", show_default=False)] = None,
    babi_dir: Annotated[Path | None, typer.Option(help="folder of bAbI files (source babi)")] = None,
    background: Annotated[list[Path] | None, typer.Option(help="background text files/folders (source babi)")] = None,
    local_path: Annotated[Path | None, typer.Option(help="JSON/JSONL samples (source local)")] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/eval"),
    dtype: Annotated[str | None, typer.Option(help="float32 | bfloat16 | float16 (default: float32, or the "
                                              "recipe's)", show_default=False)] = None,
) -> None:
    """Evaluate a backbone, or a saved augmented model, on BABILong without training.

    With --recipe R the evaluation is R's `evaluation:` section (reproducing a recipe's numbers), with any option
    given here changing one field. With --segment-length, inputs longer than it are read segment by segment into
    the memory; a model without memory then answers without the context (a no-memory baseline, with a warning).
    """
    with exit_codes():
        given = {"tasks": _csv(tasks), "lengths": _csv(lengths), "samples_per_task": samples,
                 "batch_size": batch_size, "max_new_tokens": max_new_tokens, "segment_length": segment_length,
                 "max_input_tokens": max_input_tokens, "few_shot": few_shot, "use_chat_template": chat_template,
                 "seed": seed, "resume": resume,
                 "data": {"source": source, "babi_dir": babi_dir, "background": background, "local_path": local_path}}
        recipe = _eval_recipe(recipe_path, {"name": model, "dtype": dtype}, given, out)
        loaded, tokenizer = _load_for_eval(recipe.backbone.name, recipe)
        from hercules.evaluation import evaluate_babilong

        results = evaluate_babilong(loaded, tokenizer, recipe.evaluation, out)
        if results.get("note"):
            err_console.print(f"[yellow]warning:[/] {results['note']}", highlight=False)
        console.print(f"results in {out}")


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _eval_recipe(path: Path | None, backbone: dict[str, Any], given: dict[str, Any], out: Path) -> Any:
    """An evaluation-only recipe: the --recipe's backbone and evaluation section (if any), then the options given."""
    from hercules.recipes.loading import RecipeError, load_recipe, validate_recipe

    base = load_recipe(path) if path is not None else None
    if backbone["name"] is None and base is None:
        raise RecipeError("hercules eval: give a MODEL, or --recipe R to evaluate R's backbone")
    evaluation = base.evaluation.model_dump(mode="json") if base is not None and base.evaluation else {}
    evaluation |= _given({k: v for k, v in given.items() if k != "data"})
    evaluation["data"] = evaluation.get("data", {}) | _given(given["data"])
    backbone = (base.backbone.model_dump(mode="json") if base is not None else {}) | _given(backbone)
    return validate_recipe({"name": out.name, "output_dir": str(out.parent), "evaluation": evaluation,
                            "backbone": backbone}, source="hercules eval")


def _load_for_eval(model: str, recipe: Any) -> tuple[Any, Any]:
    folder = Path(model)
    if folder.is_dir() and (folder / "hercules.json").exists():
        from transformers import AutoTokenizer

        from hercules.injection.io import load_augmented

        return load_augmented(folder), AutoTokenizer.from_pretrained(folder)
    from hercules.recipes.runner import load_backbone

    if folder.is_dir() and (folder / "adapter_config.json").exists():  # LoRA without memory, e.g. a twin
        return _load_adapter(folder, recipe)
    return load_backbone(recipe.backbone, recipe.seed)


def _load_adapter(folder: Path, recipe: Any) -> tuple[Any, Any]:
    """A PEFT adapter folder on the backbone its ``adapter_config.json`` names (a tiny backbone with the recipe's
    seed)."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from hercules.recipes.runner import load_backbone
    from hercules.recipes.schema import BackboneSettings

    name = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not name:
        raise ValueError(f"{folder}/adapter_config.json names no base_model_name_or_path: the backbone to load "
                         "the adapter on is unknown")
    base, tokenizer = load_backbone(BackboneSettings(name=name, dtype=recipe.backbone.dtype), recipe.seed)
    if (folder / "tokenizer_config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(folder)
    return PeftModel.from_pretrained(base, folder).eval(), tokenizer


def registries() -> dict[str, Any]:
    """Every :class:`hercules.registry.Registry` defined in an imported hercules module, by family name."""
    from hercules.registry import Registry

    for name in ("hercules.memory.gate_configs", "hercules.memory.models.configs", "hercules.memory.rules.configs",
                 "hercules.injection.strategy_configs", "hercules.backbones.adapters"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    found = {}
    for mod_name, module in list(sys.modules.items()):
        if not mod_name.startswith("hercules.") or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, Registry):
                found[value.family] = value
    return dict(sorted(found.items()))


@components_app.command("list")
def components_list() -> None:
    """What each registry holds, with the config fields of each component."""
    for family, registry in registries().items():
        table = Table(title=f"{family} ({len(registry)})", title_justify="left")
        table.add_column("kind", style="bold")
        table.add_column("config fields", overflow="fold")
        configs = registry.configs()
        for name in registry.names():
            cfg = configs.get(name)
            fields = "-" if cfg is None else "\n".join(
                f"{f}: {type_name(info.annotation)} = {default_repr(info)}" + (f"  ({info.description})"
                                                                          if info.description else "")
                for f, info in cfg.model_fields.items() if f != "kind")
            table.add_row(name, fields or "-")
        console.print(table)


def available_benches() -> list[str]:
    import hercules.bench

    return sorted(m.name for m in pkgutil.iter_modules(hercules.bench.__path__) if not m.name.startswith("_"))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []})
def bench(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="benchmark module in hercules/bench", show_default=False)] = None,
) -> None:
    """Run a benchmark (python -m hercules.bench.<name>); the other arguments are the benchmark's own.

    `hercules bench NAME --help` shows that benchmark's options.
    """
    names = available_benches()
    if name in (None, "--help", "-h"):
        console.print(ctx.get_help() + f"\n\nBenchmarks: {', '.join(names)}", highlight=False)
        return
    if name not in names:
        err_console.print(f"[red]error:[/] unknown benchmark {name!r}; available: {', '.join(names) or '(none)'}")
        raise typer.Exit(BAD_INPUT)
    module = importlib.import_module(f"hercules.bench.{name}")
    try:
        with exit_codes():
            module.main(list(ctx.args))
    except SystemExit as done:  # argparse exits 0 after --help, 2 on bad arguments
        if done.code not in (0, None):
            raise typer.Exit(done.code if isinstance(done.code, int) else 1) from None


if __name__ == "__main__":
    app()
