"""``hercules recipe run|validate|show|list|fields``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.syntax import Syntax
from rich.table import Table

from hercules.cli.common import BAD_INPUT, console, err_console, exit_codes, field_rows, sections_help
from hercules.recipes.schema import Recipe
from hercules.recipes.yaml_input import RecipeError

app = typer.Typer(help="Validate, inspect and run YAML recipes.", no_args_is_help=True)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="override a field: --set training.lr=3e-4 (value parsed as YAML); repeatable"),
]
RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML file", show_default=False)]
EPILOG = sections_help(Recipe)


def default_recipe_dir() -> Path:
    """``./recipes`` when present, else the recipes folder next to the installed package."""
    local = Path("recipes")
    return local if local.is_dir() else Path(__file__).resolve().parents[2] / "recipes"


@app.command(epilog=EPILOG)
def run(
    path: RecipeArg,
    set_: SetOption = None,
    resume: Annotated[bool, typer.Option(help="resume training from the run's latest checkpoint")] = False,
) -> None:
    """Run a recipe: load, augment, fine-tune, evaluate, and print the comparison table."""
    from hercules.recipes.loading import load_recipe
    from hercules.recipes.runner import run_recipe

    with exit_codes():
        overrides = list(set_ or []) + (["training.resume=latest"] if resume else [])
        recipe = load_recipe(path, overrides)
        console.print(f"[bold]recipe[/] {recipe.name} → {recipe.run_dir()}")
        summary = run_recipe(recipe, console=console)
        console.print(f"done in {summary['wall_time_s']:.0f} s; results in {summary['run_dir']}")


@app.command(epilog=EPILOG)
def validate(
    paths: Annotated[list[Path], typer.Argument(help="recipe YAML files", show_default=False)],
    set_: SetOption = None,
    plugins: Annotated[bool, typer.Option(
        help="import the modules a recipe lists under plugins: (this runs their code: use --no-plugins for a "
             "recipe you do not trust; components they would register are then unknown kinds)")] = True,
) -> None:
    """Check recipes against the schema; exit code 2 if any is invalid.

    Validating imports the Python modules listed under a recipe's plugins: section, which runs their code;
    --no-plugins skips that.
    """
    from hercules.recipes.loading import load_recipe

    bad = 0
    for path in paths:
        try:
            recipe = load_recipe(path, list(set_ or []), plugins=plugins)
            console.print(f"[green]ok[/] {path} ({recipe.name})", highlight=False)
        except RecipeError as err:
            bad += 1
            err_console.print(f"[red]invalid[/] {err}", highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(BAD_INPUT)


@app.command(epilog=EPILOG)
def show(path: RecipeArg, set_: SetOption = None) -> None:
    """Print the recipe as validated, with every default filled in, as YAML that `recipe validate` reads back.

    Lines are never wrapped or cut: redirected (``> mine.yaml``) the output is the plain recipe; on a terminal it
    is highlighted, and the terminal folds long lines only on screen.
    """
    from hercules.recipes.loading import load_recipe

    with exit_codes():
        recipe = load_recipe(path, list(set_ or []))
        text = recipe_yaml(recipe.model_dump(mode="json"))
        if console.is_terminal:
            console.print(Syntax(text, "yaml").highlight(text), soft_wrap=True, end="")
        else:
            sys.stdout.write(text)


def recipe_yaml(data: dict) -> str:
    """``data`` as YAML with no line folded (PyYAML folds long strings at 80 columns by default)."""
    return yaml.safe_dump(data, sort_keys=False, width=float("inf"), allow_unicode=True)


OFFLINE_BACKBONES = ("smollm2-135m", "gemma3-270m")
GPU_TOKENS = 1_000_000


def recipe_needs(recipe: Recipe) -> list[str]:
    """What a recipe needs beyond an offline CPU: ``hub`` (a model or data set from the Hugging Face hub, or its
    local cache) and ``GPU`` (training on at least a million tokens: language-model blocks, or BABILong samples
    counted at their longest length; with a kept frozen prefix each distinct sample counts once)."""
    name = recipe.backbone.name
    hub = not (name in OFFLINE_BACKBONES or name.startswith("tiny:") or Path(name).is_dir())
    data = recipe.data
    sources = [recipe.evaluation.data.source] if recipe.evaluation is not None else []
    if data is not None and data.kind == "babilong":
        sources.append(data.source.source)
    hub = hub or "hub" in sources or (data is not None and data.kind == "lm" and data.source == "fineweb")
    gpu = False
    if recipe.training is not None and data is not None and data.kind == "lm":
        s = recipe.training
        blocks = data.num_blocks if s.max_steps is None else min(data.num_blocks, s.max_steps * s.batch_size
                                                                 * s.grad_accumulation)
        gpu = blocks * data.block_size >= GPU_TOKENS
    elif recipe.training is not None and data is not None and data.kind == "babilong" and recipe.training.max_steps:
        from hercules.data.babilong import length_tokens

        s = recipe.training
        longest = max(max(length_tokens(n) for n in data.lengths), 256)  # a 0k story and its prompt: ~256 tokens
        visits = s.max_steps * s.batch_size * s.grad_accumulation
        if s.segments is not None and s.segments.frozen_prefix:  # a second visit runs the top layers only
            visits = min(visits, data.samples * len(data.tasks) * len(data.lengths))
        gpu = visits * longest >= GPU_TOKENS
    return [need for need, yes in (("hub", hub), ("GPU", gpu)) if yes]


def _header_command(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("#") and "hercules " in line:
            return line.lstrip("# ").strip()
    return ""


@app.command("list")
def list_(folder: Annotated[Path | None, typer.Argument(help="folder of recipes")] = None) -> None:
    """List the recipes in a folder (default: ./recipes): description, and whether each needs the hub or a GPU."""
    from hercules.recipes.loading import RecipeError, load_recipe

    folder = folder or default_recipe_dir()
    files = sorted(folder.glob("*.yaml"))
    if not files:
        err_console.print(f"[red]error:[/] no recipes (*.yaml) in {folder}")
        raise typer.Exit(BAD_INPUT)
    table = Table(title=f"recipes in {folder}", caption=f"run one: hercules recipe run {folder}/FILE\n"
                  "needs: hub = downloads from the Hugging Face hub (or its local cache); "
                  "GPU = trains on a million tokens or more", caption_justify="left")
    table.add_column("file", no_wrap=True)
    table.add_column("needs", no_wrap=True)
    table.add_column("description", ratio=1)
    problems = []
    for path in files:
        try:
            recipe = load_recipe(path)
        except RecipeError as err:
            problems.append(str(err))
            table.add_row(path.name, "invalid", "[red](see below)[/]")
            continue
        file = path.name if recipe.name == path.stem else f"{path.name}\n(name: {recipe.name})"
        table.add_row(file, ", ".join(recipe_needs(recipe)) or "none", recipe.description)
    console.print(table)
    for problem in problems:
        err_console.print(f"[red]invalid[/] {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(BAD_INPUT)


def _short(value: object, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


@app.command()
def fields(
    section: Annotated[str | None, typer.Argument(help="only fields under this path, e.g. training")] = None,
) -> None:
    """Every recipe field with its type, default and description (what --set accepts)."""
    rows = [r for r in field_rows(Recipe) if section is None or r[0] == section or r[0].startswith(f"{section}.")]
    if not rows:
        err_console.print(f"[red]error:[/] no field {section!r}; sections: {', '.join(Recipe.model_fields)}")
        raise typer.Exit(BAD_INPUT)
    table = Table(title="recipe fields")
    for col in ("field", "type", "default", "description"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
