"""Benchmark of the CLI's start-up: import time (``python -X importtime``) and wall time of light commands.

Each command runs in a fresh process (``python -X importtime``), interleaved over ``--rounds`` rounds; the table
gives medians. ``import s`` is the sum of the top-level imports' cumulative times in that process (everything
imported, the interpreter's own start-up modules included); ``wall s`` is the whole process, from start to exit.
``torch`` says whether the command imported torch. The last row, importing torch and transformers alone, is what
every command paid before they were imported only by the commands that need them.

Run: ``python -m hercules.bench.cli_startup`` (``--rounds 5``, ``--json rows.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

_CLI = "import sys; from hercules.cli.main import app; sys.argv = ['hercules', *{args!r}]; app()"


def commands(recipe: Path) -> dict[str, str]:
    """``{row name: Python code run with -X importtime}``."""
    return {
        "hercules --help": _CLI.format(args=["--help"]),
        "hercules recipe validate": _CLI.format(args=["recipe", "validate", str(recipe)]),
        "hercules recipe list": _CLI.format(args=["recipe", "list", str(recipe.parent)]),
        "import torch, transformers (reference)": "import torch, transformers",
    }


def parse_importtime(stderr: str) -> tuple[float, set[str]]:
    """``(seconds of all top-level imports, names of every imported module)`` from ``-X importtime`` output.

    Lines read ``import time: <self us> | <cumulative us> | <indent><module>``; nesting is two spaces per level.
    """
    total_us, modules = 0, set()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|", 2)
        if not cumulative.strip().isdigit():
            continue  # the header line
        modules.add(name.strip())
        if name[1:2] != " ":  # one leading space, no indent: a top-level import
            total_us += int(cumulative)
    return total_us / 1e6, modules


def measure(code: str) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, None):
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"rc {done.returncode}"}
    seconds, modules = parse_importtime(done.stderr)
    return {"import_s": seconds, "wall_s": wall, "torch": "torch" in modules}


def run(rounds: int, recipe: Path) -> list[dict]:
    """Every command once per round, interleaved; medians per command."""
    cmds = commands(recipe)
    results: dict[str, list[dict]] = {name: [] for name in cmds}
    for _ in range(rounds):
        for name, code in cmds.items():
            results[name].append(measure(code))
    rows = []
    for name, runs in results.items():
        errors = [r["error"] for r in runs if "error" in r]
        if errors:
            rows.append({"command": name, "error": errors[0]})
            continue
        rows.append({"command": name, "import_s": median(r["import_s"] for r in runs),
                     "wall_s": median(r["wall_s"] for r in runs), "torch": any(r["torch"] for r in runs),
                     "rounds": len(runs)})
    return rows


def main(argv: list[str] | None = None) -> None:
    from hercules.cli.recipe import default_recipe_dir

    parser = argparse.ArgumentParser(prog="hercules bench cli_startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians reported)")
    parser.add_argument("--recipe", type=Path, default=default_recipe_dir() / "quickstart.yaml",
                        help="recipe given to `recipe validate`")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    rows = run(args.rounds, args.recipe)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"CLI start-up (fresh processes), median of {args.rounds} rounds")
    for col in ("command", "import s", "wall s", "torch"):
        table.add_column(col, justify="left" if col == "command" else "right")
    for r in rows:
        cells = ("error: " + r["error"][:50], "", "") if "error" in r else (
            f"{r['import_s']:.2f}", f"{r['wall_s']:.2f}", "yes" if r["torch"] else "no")
        table.add_row(r["command"], *cells)
    Console().print(table)


if __name__ == "__main__":
    main()
