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
import pkgutil
import runpy
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
    return EvalSettings.model_fields[name].description or ""


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@app.command("eval")
def eval_(
    model: Annotated[str, typer.Argument(help="backbone (hub id, folder, smollm2-135m, gemma3-270m, tiny:<family>) "
                                              "or a folder saved by a recipe run (run/model)")],
    tasks: Annotated[str, typer.Option(help=_desc("tasks") + " (comma-separated)")] = "qa1,qa2,qa3,qa4,qa5",
    lengths: Annotated[str, typer.Option(help=_desc("lengths") + " (comma-separated)")] = "0k,1k,2k",
    samples: Annotated[int, typer.Option(help=_desc("samples_per_task"))] = 100,
    batch_size: Annotated[int, typer.Option(help=_desc("batch_size"))] = 1,
    max_new_tokens: Annotated[int, typer.Option(help=_desc("max_new_tokens"))] = 25,
    segment_length: Annotated[int | None, typer.Option(help=_desc("segment_length"))] = None,
    source: Annotated[str, typer.Option(help="BABILong source: procedural | babi | hub | local")] = "procedural",
    babi_dir: Annotated[Path | None, typer.Option(help="folder of bAbI files (source babi)")] = None,
    background: Annotated[list[Path] | None, typer.Option(help="background text files/folders (source babi)")] = None,
    local_path: Annotated[Path | None, typer.Option(help="JSON/JSONL samples (source local)")] = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/eval"),
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16 | float16")] = "float32",
) -> None:
    """Evaluate a backbone, or a saved augmented model, on BABILong without training."""
    from hercules.recipes.loading import validate_recipe

    with exit_codes():
        data = {"source": source, "babi_dir": babi_dir, "background": background, "local_path": local_path}
        evaluation = {"tasks": _csv(tasks), "lengths": _csv(lengths), "samples_per_task": samples,
                      "batch_size": batch_size, "max_new_tokens": max_new_tokens, "segment_length": segment_length,
                      "data": {k: v for k, v in data.items() if v is not None}}
        recipe = validate_recipe({"name": out.name, "output_dir": str(out.parent), "evaluation": evaluation,
                                  "backbone": {"name": model, "dtype": dtype}}, source="hercules eval")
        settings = recipe.evaluation
        loaded, tokenizer = _load_for_eval(model, recipe)
        from hercules.evaluation import evaluate_babilong

        evaluate_babilong(loaded, tokenizer, settings, out)
        console.print(f"results in {out}")


def _load_for_eval(model: str, recipe: Any) -> tuple[Any, Any]:
    folder = Path(model)
    if folder.is_dir() and (folder / "hercules.json").exists():
        from transformers import AutoTokenizer

        from hercules.injection.io import load_augmented

        return load_augmented(folder), AutoTokenizer.from_pretrained(folder)
    from hercules.recipes.runner import load_backbone

    return load_backbone(recipe.backbone, recipe.seed)


def registries() -> dict[str, Any]:
    """Every :class:`hercules.registry.Registry` defined in an imported hercules module, by family name."""
    from hercules.registry import Registry

    for name in ("hercules.memory", "hercules.injection", "hercules.backbones"):
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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="benchmark module in hercules/bench (memory, backbone)")],
) -> None:
    """Run a benchmark (python -m hercules.bench.<name>); extra arguments are passed to it."""
    names = available_benches()
    if name not in names:
        err_console.print(f"[red]error:[/] unknown benchmark {name!r}; available: {', '.join(names) or '(none)'}")
        raise typer.Exit(BAD_INPUT)
    argv = sys.argv
    sys.argv = [f"hercules.bench.{name}", *ctx.args]
    try:
        with exit_codes():
            runpy.run_module(f"hercules.bench.{name}", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        if done.code not in (0, None):
            raise typer.Exit(done.code if isinstance(done.code, int) else 1) from None
    finally:
        sys.argv = argv


if __name__ == "__main__":
    app()
