"""Every recipe in recipes/ validates, names its exact command in its header, and says what the thesis says;
the quickstart runs end to end on a tiny backbone; a LoRA-only baseline builds without memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hercules.cli.main import app
from hercules.recipes.loading import load_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
THESIS = ["llama3.2-1b-alma", "llama3.2-1b-elma", "llama3.2-1b-lora", "llama3.2-1b-alma-memory-only",
          "qwen3-0.6b-alma", "gemma3-270m-alma"]


def recipe(name: str):
    return load_recipe(ROOT / "recipes" / f"{name}.yaml")


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates_and_its_header_gives_its_command(path):
    loaded = load_recipe(path)
    assert loaded.name == path.stem
    assert path.read_text().splitlines()[0] == f"# hercules recipe run recipes/{path.name}"


def test_all_expected_recipes_exist():
    assert {p.stem for p in RECIPES} >= {"quickstart", "llama3.2-1b-backbone", *THESIS}


@pytest.mark.parametrize("name", ["llama3.2-1b-alma", "llama3.2-1b-elma", "llama3.2-1b-alma-memory-only",
                                  "qwen3-0.6b-alma", "gemma3-270m-alma"])
def test_thesis_memory(name):
    r = recipe(name)
    assert r.augment.injection.kind == "mac"
    assert (r.augment.memory.model.kind, r.augment.memory.model.depth, r.augment.memory.model.expansion) == \
        ("mlp", 3, 2.0)
    assert r.augment.memory.rule.kind == "titans" and r.augment.memory.rule.max_lr == 1e-2


def test_alma_and_elma_layers_and_backbones():
    assert recipe("llama3.2-1b-alma").augment.layers == [14, 15]
    assert recipe("llama3.2-1b-elma").augment.layers == [1, 2]
    assert recipe("qwen3-0.6b-alma").augment.layers == [26, 27]  # the last two of 28
    assert recipe("gemma3-270m-alma").augment.layers == [16, 17]  # the last two of 18
    assert recipe("llama3.2-1b-alma").backbone.name == "meta-llama/Llama-3.2-1B"
    assert recipe("qwen3-0.6b-alma").backbone.name == "Qwen/Qwen3-0.6B"


@pytest.mark.parametrize("name", THESIS)
def test_thesis_training_data_and_evaluation(name):
    r = recipe(name)
    lora_expected = name != "llama3.2-1b-alma-memory-only"
    assert r.peft.preset == ("memory_lora" if lora_expected else "memory")
    assert (r.peft.lora_r, r.peft.lora_alpha, r.peft.lora_dropout) == (16, 32, 0.05)
    assert r.peft.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    d, t = r.data, r.training
    assert (d.kind, d.source, d.num_blocks, d.block_size, d.val_blocks) == ("lm", "fineweb", 50_000, 2048, 100)
    assert (t.batch_size, t.grad_accumulation, t.lr, t.weight_decay, t.schedule.kind) == (4, 4, 1e-3, 0.1, "constant")
    assert t.num_validations == 50 and t.max_steps * t.effective_batch_size() == 50_000
    _check_thesis_eval(r)


def _check_thesis_eval(r):
    e = r.evaluation
    assert e.tasks == [f"qa{i}" for i in range(1, 11)] and e.lengths == ["2k"]
    assert (e.samples_per_task, e.batch_size, e.max_new_tokens, e.data.source) == (100, 1, 25, "hub")


def test_baselines_differ_from_alma_only_where_they_should():
    alma = recipe("llama3.2-1b-alma").model_dump()
    for name, differs in [("llama3.2-1b-elma", {"augment"}), ("llama3.2-1b-lora", {"augment"}),
                          ("llama3.2-1b-alma-memory-only", {"peft"})]:
        other = recipe(name).model_dump()
        changed = {k for k in alma if alma[k] != other[k]} - {"name", "description"}
        assert changed == differs, name
    backbone = recipe("llama3.2-1b-backbone")
    assert backbone.augment is None and backbone.training is None and backbone.peft is None
    _check_thesis_eval(backbone)


def test_quickstart_is_offline_and_compares_with_the_backbone():
    q = recipe("quickstart")
    assert q.backbone.name == "smollm2-135m" and q.augment.injection.kind == "mag"
    assert q.peft.preset == "memory_lora" and q.compare_with_backbone
    assert q.data.kind == "babilong" and q.data.source.source == "procedural" and q.data.tasks == ["qa1"]
    assert q.evaluation.data.source == "procedural"
    assert q.data.few_shot == q.evaluation.few_shot  # the model is evaluated on the prompt it was trained on
    # the fair comparison: a LoRA-only twin trained the same way, on inputs read in segments as evaluated
    assert q.baselines == ["no_memory"] and q.training.segments is not None
    assert q.data.segment_length == q.evaluation.segment_length


TINY = ["--set", "backbone.name=tiny:llama", "--set", "augment.layers=[-1]",
        "--set", "peft.target_modules=[q_proj, v_proj]", "--set", "data.samples=6", "--set", "data.val_samples=2",
        "--set", "training.max_steps=2", "--set", "training.batch_size=1", "--set", "evaluation.samples_per_task=2",
        "--set", "evaluation.max_new_tokens=3", "--set", "tracking.progress=false"]


def test_quickstart_runs_end_to_end_on_a_tiny_backbone(tmp_path):
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["recipe", "run", str(ROOT / "recipes" / "quickstart.yaml"), "--set", f"output_dir={tmp_path}", *TINY])
    assert result.exit_code == 0, result.output
    assert "BABILong accuracy (%) at 0k" in result.output and "backbone" in result.output
    run = tmp_path / "quickstart"
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["evaluation"]) == {"backbone", "hercules"}
    assert summary["training"]["steps"] == 2 and summary["training"]["skipped_steps"] == 0
    assert set(summary["twins"]) == {"no_memory"} and "no memory, same training (twin)" in result.output
    twin = json.loads((run / "twins" / "no_memory" / "summary.json").read_text())
    assert twin["training"]["steps"] == 2 and twin["trainable"] < summary["trainable"]
    assert (run / "model" / "hercules.json").exists() and (run / "loss_curve.png").exists()
    train = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(k.startswith("diag/layer1/") for r in train if r["kind"] == "train" for k in r)
    # the saved model evaluates through `hercules eval`
    out = tmp_path / "ev"
    again = CliRunner().invoke(app, ["eval", str(run / "model"), "--tasks", "qa1", "--lengths", "0k", "--samples", "2",
                                     "--max-new-tokens", "3", "--segment-length", "64", "--out", str(out)])
    assert again.exit_code == 0, again.output
    first = [json.loads(x)["output"] for x in (run / "eval" / "hercules" / "predictions.jsonl").read_text().splitlines()]
    second = [json.loads(x)["output"] for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert first == second  # the saved model answers exactly as the trained one did
    # so does the LoRA-only twin, saved as a PEFT adapter that names its backbone as the recipe does
    twin_model = run / "twins" / "no_memory" / "model"
    assert json.loads((twin_model / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny:llama"
    out = tmp_path / "ev-twin"
    again = CliRunner().invoke(app, ["eval", str(twin_model), "--tasks", "qa1", "--lengths", "0k", "--samples", "2",
                                     "--max-new-tokens", "3", "--segment-length", "64", "--out", str(out)])
    assert again.exit_code == 0, again.output
    first = [json.loads(x)["output"] for x in
             (run / "twins" / "no_memory" / "eval" / "hercules" / "predictions.jsonl").read_text().splitlines()]
    second = [json.loads(x)["output"] for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert first == second


def test_segment_recipes_train_in_the_layout_and_prompt_they_evaluate():
    for name in ("smollm2-babilong-segments", "smollm2-babilong-segments-cpu"):
        r = recipe(name)
        assert r.data.segment_length == r.evaluation.segment_length and r.training.segments is not None, name
        assert r.data.few_shot == r.evaluation.few_shot, name
        assert r.data.use_chat_template == r.evaluation.use_chat_template, name
        assert r.baselines == ["no_memory"], name  # the twin is the baseline


def test_cpu_segment_recipe_runs_its_kept_prefix_and_every_person_end_to_end(tmp_path):
    """The CPU recipe's own path (frozen prefix below the trained layer, every person asked) on a tiny backbone."""
    tiny = ["--set", "backbone.name=tiny:llama", "--set", "augment.layers=[-1]",
            "--set", "peft.target_modules=[layers.1.self_attn.q_proj, layers.1.self_attn.v_proj]",
            "--set", "data.samples=4", "--set", "data.val_samples=1", "--set", "training.max_steps=3",
            "--set", "evaluation.samples_per_task=2", "--set", "evaluation.lengths=[0k]",
            "--set", "evaluation.max_new_tokens=3", "--set", "tracking.progress=false"]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [
        "recipe", "run", str(ROOT / "recipes" / "smollm2-babilong-segments-cpu.yaml"),
        "--set", f"output_dir={tmp_path}", *tiny])
    assert result.exit_code == 0, result.output
    run = tmp_path / "smollm2-babilong-segments-cpu"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["training"]["steps"] == 3 and summary["training"]["skipped_steps"] == 0
    assert set(summary["twins"]) == {"no_memory"}


def test_lora_baseline_builds_without_memory():
    from hercules.recipes.runner import build_model

    r = recipe("llama3.2-1b-lora").model_copy(update={"backbone": recipe("quickstart").backbone.model_copy(
        update={"name": "tiny:llama"})})
    model, _ = build_model(r)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_evaluations_are_reused_only_for_the_same_model(tmp_path, monkeypatch):
    import hercules.evaluation.evaluator as evaluator
    from hercules.recipes.runner import _evaluate_once, load_backbone
    from hercules.recipes.schema import Recipe

    calls = []
    real = evaluator.generate_answers
    monkeypatch.setattr(evaluator, "generate_answers", lambda *a, **k: calls.append(1) or real(*a, **k))
    r = Recipe.model_validate({"name": "x", "backbone": {"name": "tiny:llama"}, "evaluation": {
        "tasks": ["qa1"], "lengths": ["0k"], "samples_per_task": 2, "max_new_tokens": 2, "progress": False}})
    model, tok = load_backbone(r.backbone)
    out = tmp_path / "eval"
    _evaluate_once(model, tok, r, out, {"backbone": "a"}, may_resume=True)
    first = len(calls)
    _evaluate_once(model, tok, r, out, {"backbone": "a"}, may_resume=True)
    assert len(calls) == first  # same model: predictions reused
    _evaluate_once(model, tok, r, out, {"backbone": "b"}, may_resume=True)
    assert len(calls) == 2 * first  # another model: evaluated afresh
    _evaluate_once(model, tok, r, out, {"backbone": "b"}, may_resume=False)
    assert len(calls) == 3 * first  # trained in this run: afresh
