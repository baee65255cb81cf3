"""The `hercules` CLI through typer's CliRunner: exit codes 0/1/2, messages, tables, --help from descriptions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hercules.cli.main import app
from hercules.recipes.loading import load_recipe

runner = CliRunner(env={"COLUMNS": "200"})

EVAL_ONLY = """# hercules recipe run {path}
name: cli-eval
description: tiny evaluation
output_dir: {out}
backbone: {{name: "tiny:llama"}}
evaluation: {{tasks: [qa1], lengths: [0k], samples_per_task: 2, max_new_tokens: 3, progress: false}}
"""


@pytest.fixture
def recipe_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(EVAL_ONLY.format(path=path, out=tmp_path / "runs"))
    return path


def test_validate_ok_and_bad_exit_codes(recipe_file, tmp_path):
    ok = runner.invoke(app, ["recipe", "validate", str(recipe_file)])
    assert ok.exit_code == 0 and "ok" in ok.output and "cli-eval" in ok.output
    bad = runner.invoke(app, ["recipe", "validate", str(recipe_file), "--set", "evaluation.tasks=[qa0]"])
    assert bad.exit_code == 2
    assert "evaluation.tasks" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["recipe", "run", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "no such recipe file" in missing.output


def test_show_prints_defaults_and_overrides(recipe_file):
    result = runner.invoke(app, ["recipe", "show", str(recipe_file), "--set", "seed=11"])
    assert result.exit_code == 0
    assert "seed: 11" in result.output and "max_new_tokens: 3" in result.output and "few_shot:" in result.output


LONG = "a description long enough to be cut at a narrow terminal, " * 3 + "with its end"


@pytest.mark.parametrize("env", [{}, {"FORCE_COLOR": "1"}], ids=["redirected", "terminal"])
def test_show_output_validates_back_to_the_same_recipe_at_40_columns(recipe_file, tmp_path, env):
    recipe_file.write_text(recipe_file.read_text().replace("tiny evaluation", LONG))
    shown = CliRunner(env={"COLUMNS": "40", **env}).invoke(app, ["recipe", "show", str(recipe_file)])
    assert shown.exit_code == 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", shown.output)  # the terminal's colours
    assert (LONG in text) and max(map(len, text.splitlines())) > 40
    copy = tmp_path / "copy.yaml"
    copy.write_text(text)
    again = runner.invoke(app, ["recipe", "validate", str(copy)])
    assert again.exit_code == 0, again.output
    assert load_recipe(copy).model_dump() == load_recipe(recipe_file).model_dump()


def test_help_and_validate_import_neither_torch_nor_transformers(recipe_file):
    code = (
        "import sys; from typer.testing import CliRunner; from hercules.cli.main import app; "
        f"r = [CliRunner().invoke(app, a).exit_code for a in (['--help'], ['recipe', 'validate', {str(recipe_file)!r}])]; "
        "print(r, sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[0, 0] []", done.stdout + done.stderr


def test_list_shows_name_description_and_command(recipe_file):
    result = runner.invoke(app, ["recipe", "list", str(recipe_file.parent)])
    assert result.exit_code == 0
    assert "cli-eval" in result.output and "tiny evaluation" in result.output
    assert runner.invoke(app, ["recipe", "list", str(recipe_file.parent / "empty")]).exit_code == 2


def test_list_fits_80_columns_with_whole_file_names_and_what_each_recipe_needs():
    folder = Path(__file__).resolve().parents[1] / "recipes"
    result = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["recipe", "list", str(folder)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80
    needs = {}
    for path in sorted(folder.glob("*.yaml")):
        (row,) = [line for line in lines if f" {path.name} " in line]  # never broken across lines
        needs[path.stem] = row.split("│")[2].strip()
    assert needs["quickstart"] == "none" and needs["llama3.2-1b-alma"] == "hub, GPU"
    assert needs["llama3.2-1b-backbone"] == "hub"  # evaluates only, on the hub's BABILong
    assert needs["smollm2-babilong-segments"] == "GPU" and needs["smollm2-babilong-segments-cpu"] == "none"


def test_fields_table_and_help_use_field_descriptions():
    fields = runner.invoke(app, ["recipe", "fields", "training"])
    assert fields.exit_code == 0
    assert "training.grad_accumulation" in fields.output and "micro-batches accumulated" in fields.output
    assert runner.invoke(app, ["recipe", "fields", "nonsense"]).exit_code == 2
    help_text = runner.invoke(app, ["eval", "--help"]).output
    assert "greedy decoding budget per answer" in help_text  # EvalSettings.max_new_tokens' description
    run_help = runner.invoke(app, ["recipe", "run", "--help"]).output
    assert "evaluate without training" in run_help  # Recipe.training's description in the epilog


def test_run_eval_only_recipe_writes_summary(recipe_file, tmp_path):
    result = runner.invoke(app, ["recipe", "run", str(recipe_file)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "runs" / "cli-eval" / "summary.json").read_text())
    results = json.loads((tmp_path / "runs" / "cli-eval" / "eval" / "backbone" / "results.json").read_text())
    assert results["counts"]["qa1"]["0k"] == 2
    assert summary["evaluation"]["backbone"]["accuracy"] == results["accuracy"]


def test_eval_command_on_a_tiny_backbone(tmp_path):
    out = tmp_path / "ev"
    result = runner.invoke(app, ["eval", "tiny:llama", "--tasks", "qa1,qa2", "--lengths", "0k", "--samples", "2",
                                 "--max-new-tokens", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    counts = json.loads((out / "results.json").read_text())["counts"]
    assert counts == {"qa1": {"0k": 2}, "qa2": {"0k": 2}}
    bad = runner.invoke(app, ["eval", "tiny:llama", "--tasks", "qa1", "--lengths", "3x"])
    assert bad.exit_code == 2 and "3x" in bad.output


def test_eval_takes_the_recipes_settings_and_options_override_them(recipe_file, tmp_path):
    recipe_file.write_text(recipe_file.read_text().replace("progress: false}", "progress: false, few_shot: false}"))
    out = tmp_path / "ev"
    result = runner.invoke(app, ["eval", "--recipe", str(recipe_file), "--samples", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["settings"]["few_shot"] is False and saved["settings"]["max_new_tokens"] == 3  # the recipe's
    assert saved["counts"] == {"qa1": {"0k": 3}}  # --samples 3 replaced the recipe's 2
    assert saved["model"]["model_type"] == "llama" and saved["note"] is None
    assert runner.invoke(app, ["eval"]).exit_code == 2  # neither a model nor a recipe


def test_eval_in_segments_without_memory_warns_and_is_named_a_no_memory_baseline(tmp_path):
    out = tmp_path / "ev"
    result = CliRunner(env={"COLUMNS": "80"}).invoke(app, [
        "eval", "tiny:llama", "--tasks", "qa1", "--lengths", "0k", "--samples", "1", "--max-new-tokens", "2",
        "--segment-length", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning: no-memory baseline" in " ".join(result.output.split())
    saved = json.loads((out / "results.json").read_text())
    assert saved["note"].startswith("no-memory baseline") and saved["settings"]["segment_length"] == 16
    assert "no memory (no-memory baseline)" in result.output  # the table's title


@pytest.mark.parametrize(("args", "named"), [
    (["tiny:nosuchfamily"], "nosuchfamily"),
    (["no-such-model-xyz"], "no-such-model-xyz"),
    (["tiny:llama", "--source", "local"], "local_path"),
    (["tiny:llama", "--source", "babi"], "babi_dir"),
])
def test_bad_eval_inputs_exit_2_with_one_line(tmp_path, monkeypatch, args, named):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(app, ["eval", *args, "--tasks", "qa1", "--lengths", "0k", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert named in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_failures_while_running_exit_1_with_a_message(tmp_path, monkeypatch):
    import hercules.evaluation

    def broken(*args, **kwargs):
        raise RuntimeError("out of disk")

    monkeypatch.setattr(hercules.evaluation, "evaluate_babilong", broken)
    result = runner.invoke(app, ["eval", "tiny:llama", "--tasks", "qa1", "--lengths", "0k",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "out of disk" in result.output and "Traceback" not in result.output


def test_version_option():
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"hercules {version('hercules')}"


def test_components_list_shows_registries_and_config_fields():
    result = runner.invoke(app, ["components", "list"])
    assert result.exit_code == 0
    for family in ("memory model", "update rule", "retrieval gate"):
        assert family in result.output
    assert "mlp" in result.output and "depth" in result.output and "titans" in result.output


def test_bench_unknown_name_is_bad_input():
    result = runner.invoke(app, ["bench", "nosuchbench"])
    assert result.exit_code == 2 and "unknown benchmark" in result.output


def test_bench_runs_the_module_with_its_arguments():
    listed = runner.invoke(app, ["bench", "nosuchbench"])
    assert "backbone" in listed.output and "memory" in listed.output  # the available benchmarks are named
    bad = runner.invoke(app, ["bench", "memory", "--impls", "nosuchimpl"])
    assert bad.exit_code == 2 and "invalid choice" in bad.output  # argparse of hercules.bench.memory saw it
    for name, option in [("backbone", "--rounds"), ("memory", "--naive-max-len")]:
        helped = runner.invoke(app, ["bench", name, "--help"])
        assert helped.exit_code == 0 and option in helped.output and f"hercules bench {name}" in helped.output
    assert "cli_startup" in runner.invoke(app, ["bench", "--help"]).output
