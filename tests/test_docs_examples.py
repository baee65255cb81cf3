"""The documentation's examples run, and no usage code in the docs escapes being run.

Every ``docs/examples/*.py`` is executed, every ``hercules ...`` command of a ``docs/examples/*.sh`` is invoked
through the CLI and every ``docs/examples/*.yaml`` recipe is validated, all in one worker process (started once, so torch and transformers are imported once, and kept
apart from pytest's process, so plugins that the examples register never leak into other tests). The examples
carry their own assertions: an example whose claim is false fails here.

The pages may show code only by including those files (``--8<-- "docs/examples/..."``), and every example must be
included by some page; the API reference must document every public module of ``hercules``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
# A plugin package of our own, used by the extending examples; the worker imports it as if pip-installed.
PLUGIN_PACKAGE = EXAMPLES / "my_plugins"

# Shell examples that are shown but not run here, with the reason.
SKIP_SHELL = {
    "install.sh": "installs packages; CI runs the same commands from README.md",
    "install_extras.sh": "installs packages",
    "quickstart.sh": "minutes of training on two CPU cores; the recipe itself is validated by the recipe tests",
    "recipe_commands.sh": "runs the quickstart; validating recipes is tested by the recipe tests",
    "bench_commands.sh": "installs a package and runs benchmarks for minutes",
    "bench_babilong.sh": "a measurement of about an hour on CPU",
    "eval_segments.sh": "needs the quickstart's trained model; tests/test_cli.py runs eval in segments on a tiny one",
    "install_plugins.sh": "installs a package; the tests put it on sys.path instead",
    "thesis_commands.sh": "GPU-days of training on models from the hub; tests/test_recipes.py validates each recipe",
}
# Languages of code that shows usage: such blocks must be included from a file, never written inline.
USAGE_LANGUAGES = {"python", "py", "pycon", "bash", "sh", "shell", "console", "yaml", "yml", "toml"}
SNIPPET = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$')
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")


def python_examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.py"))


def shell_examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.sh"))


def recipe_examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def shell_commands(path: Path) -> list[list[str]]:
    """The commands of a shell example, continuation lines joined and comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    lines = [line.split(" #")[0].strip() for line in text.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


# ----------------------------------------------------------------------------------------------------------------
# The worker: `python tests/test_docs_examples.py OUT.json` runs every example and writes one result per example.


def _run_python(path: Path) -> None:
    import runpy

    import torch

    torch.manual_seed(0)
    runpy.run_path(str(path), run_name="__main__")


def _run_shell(path: Path) -> None:
    from typer.testing import CliRunner

    from hercules.cli.main import app

    for argv in shell_commands(path):
        if argv[0] != "hercules":
            raise ValueError(f"{path.name}: only `hercules ...` commands can run here, got {argv!r}")
        result = CliRunner().invoke(app, argv[1:])
        if result.exit_code != 0:
            raise RuntimeError(f"`{shlex.join(argv)}` exited with {result.exit_code}:\n{result.output}")


def _validate_recipe(path: Path) -> None:
    from hercules.recipes import load_recipe

    load_recipe(path)


def _worker(out: Path) -> None:
    os.chdir(ROOT)
    sys.path[:0] = [str(ROOT), str(PLUGIN_PACKAGE)]
    results = {}
    jobs = [(p, _run_python) for p in python_examples()]
    jobs += [(p, _run_shell) for p in shell_examples() if p.name not in SKIP_SHELL]
    jobs += [(p, _validate_recipe) for p in recipe_examples()]
    for path, run in jobs:
        start = time.perf_counter()
        try:
            run(path)
            error = None
        except BaseException:  # noqa: BLE001 - every failure, SystemExit included, is reported per example
            error = traceback.format_exc()
        results[path.name] = {"error": error, "seconds": round(time.perf_counter() - start, 2)}
    out.write_text(json.dumps(results, indent=1))


@pytest.fixture(scope="module")
def example_results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("docs") / "results.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, __file__, str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and out.exists(), f"example worker failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(out.read_text())


@pytest.mark.parametrize("path", python_examples() + shell_examples() + recipe_examples(), ids=lambda p: p.name)
def test_example_runs(path: Path, example_results: dict) -> None:
    if path.name in SKIP_SHELL:
        pytest.skip(SKIP_SHELL[path.name])
    result = example_results[path.name]
    assert result["error"] is None, f"{path.name} failed:\n{result['error']}"


# ----------------------------------------------------------------------------------------------------------------
# Static checks of the pages.


def code_blocks(page: Path) -> list[tuple[int, str, list[str]]]:
    """(line number, language, body lines) of every fenced code block of a Markdown page."""
    blocks, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, start, body = match["fence"], i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        blocks.append((start, match["lang"].lower(), body))
        i += 1
    return blocks


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def included_files() -> set[Path]:
    found = set()
    for page in pages():
        for _, _, body in code_blocks(page):
            for line in body:
                if match := SNIPPET.match(line):
                    found.add((ROOT / match[1].split(":")[0]).resolve())
    return found


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_usage_code_is_included_not_inline(page: Path) -> None:
    for line_no, lang, body in code_blocks(page):
        if lang not in USAGE_LANGUAGES:
            continue
        inline = [line for line in body if line.strip() and not SNIPPET.match(line)]
        assert not inline, (
            f"{page.relative_to(ROOT)}:{line_no}: a {lang} block has inline code {inline[:2]!r}; put it in "
            f"docs/examples/ and include it with --8<-- so that tests/test_docs_examples.py runs it"
        )
        for line in body:
            if match := SNIPPET.match(line):
                target = ROOT / match[1].split(":")[0]
                assert target.is_file(), f"{page.relative_to(ROOT)}:{line_no}: {match[1]} does not exist"


def test_every_example_is_shown_on_some_page() -> None:
    shown = included_files()
    files = [p for p in EXAMPLES.rglob("*") if p.suffix in {".py", ".sh", ".yaml", ".toml"}]
    orphans = [str(p.relative_to(EXAMPLES)) for p in files if p.resolve() not in shown and "__pycache__" not in p.parts]
    assert not orphans, f"examples that no page includes: {orphans}"


def public_modules() -> list[str]:
    """Every public module of the hercules package, found on disk (no ``_private`` parts, no ``__main__``)."""
    names = []
    for path in sorted((ROOT / "hercules").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return sorted(set(names))


def test_api_reference_covers_every_public_module() -> None:
    documented = set()
    for page in (DOCS / "api").glob("*.md"):
        documented |= set(re.findall(r"^:::\s+([\w.]+)", page.read_text(), flags=re.M))
    missing = [m for m in public_modules() if m not in documented]
    assert not missing, f"public modules without a `::: module` section under docs/api/: {missing}"
    stale = [m for m in documented if not (ROOT / (m.replace(".", "/") + ".py")).exists()
             and not (ROOT / m.replace(".", "/") / "__init__.py").exists()]
    assert not stale, f"docs/api/ documents modules that do not exist: {stale}"


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
