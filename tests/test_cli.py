"""The `hercules` CLI through typer's CliRunner: exit codes 0/1/2, messages, tables, --help from descriptions."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hercules.cli.main import app

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


def test_list_shows_name_description_and_command(recipe_file):
    result = runner.invoke(app, ["recipe", "list", str(recipe_file.parent)])
    assert result.exit_code == 0
    assert "cli-eval" in result.output and "tiny evaluation" in result.output
    assert runner.invoke(app, ["recipe", "list", str(recipe_file.parent / "empty")]).exit_code == 2


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
    helped = runner.invoke(app, ["bench", "backbone", "--", "--help"])
    assert helped.exit_code == 0 and "--rounds" in helped.output
