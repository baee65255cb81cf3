"""Recipe schema, YAML loading, --set overrides, one-line errors, and training items built from data sections."""

from __future__ import annotations

import pytest

from hercules.recipes.data import babilong_item, build_items, pack_blocks
from hercules.recipes.loading import RecipeError, apply_overrides, load_recipe, validate_recipe
from hercules.recipes.schema import BabilongTrainData, TextData

BASE = {"name": "t", "backbone": {"name": "tiny:llama"},
        "evaluation": {"tasks": ["qa1"], "lengths": ["0k"], "samples_per_task": 2}}


def test_overrides_set_nested_values_parsed_as_yaml():
    data = {"training": {"lr": 1e-3, "schedule": {"kind": "constant"}}, "evaluation": {"tasks": ["qa1"]}}
    apply_overrides(data, ["training.lr=3e-4", "training.schedule.kind=cosine", "evaluation.tasks=[qa1, qa2]",
                           "peft=null", "new.section.value=7", "evaluation.tasks.1=qa3"])
    assert data["training"] == {"lr": 3e-4, "schedule": {"kind": "cosine"}}
    assert data["evaluation"]["tasks"] == ["qa1", "qa3"]
    assert data["peft"] is None and data["new"] == {"section": {"value": 7}}


@pytest.mark.parametrize("bad", ["training.lr", "=3", "name.x=1"])
def test_bad_overrides_are_recipe_errors(bad):
    with pytest.raises(RecipeError, match="--set"):
        apply_overrides({"name": "x"}, [bad])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"evaluation": {"lenghts": ["0k"]}},
         "evaluation.lenghts: unknown field (did you mean 'lengths'?); allowed: batch_size,"),
        ({"backbone": {"name": "x", "dtype": "fp8"}},
         "backbone.dtype: Input should be 'float32', 'bfloat16' or 'float16' (got 'fp8')"),
        ({"training": {"max_steps": 1, "lr": -1}, "data": {"kind": "babilong"}},
         "training.lr: Input should be greater than 0 (got -1)"),
        ({"training": {"max_steps": 1}, "data": {"kind": "books"}},
         "does not match any of the expected tags: 'babilong', 'fineweb', 'text'"),
        ({"training": {"max_steps": 1}, "data": {"kind": "babilong", "colour": 1}},
         "data.babilong.colour: unknown field; allowed: few_shot, kind, lengths,"),
        ({"training": {"max_steps": 1}}, "training needs a data section"),
    ],
)
def test_errors_name_field_value_and_allowed_values_on_one_line(change, expected):
    with pytest.raises(RecipeError) as info:
        validate_recipe(BASE | change)
    message = str(info.value)
    assert expected in message
    assert all(line.startswith("recipe: ") for line in message.splitlines())


def test_load_recipe_reads_yaml_and_reports_yaml_errors(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("name: t\nbackbone: {name: 'tiny:llama'}\nevaluation: {tasks: [qa1], lengths: [0k]}\n")
    recipe = load_recipe(good, ["seed=5", "evaluation.samples_per_task=3"])
    assert recipe.seed == 5 and recipe.evaluation.samples_per_task == 3
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: t\nbackbone: [unclosed\n")
    with pytest.raises(RecipeError, match=r"broken.yaml line \d+, column \d+: invalid YAML"):
        load_recipe(broken)
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "missing.yaml")


def test_babilong_items_mask_the_prompt_and_end_with_eos(byte_tok):
    train, val = build_items(BabilongTrainData(samples=5, val_samples=2), byte_tok, seed=0)
    assert len(train) == 5 and len(val) == 2
    for item in train + val:
        ids, labels = item["input_ids"], item["labels"]
        assert len(ids) == len(labels) and ids[-1] == byte_tok.eos_token_id
        answer = [t for t in labels if t != -100]
        first = labels.index(answer[0])
        assert labels[:first] == [-100] * first and labels[first:] == ids[first:]  # answer only, at the end
    # the answer tokens decode to the sample's target
    sample = type("S", (), {"task": "qa1", "context": "Mary went to the office.", "question": "Where is Mary?",
                            "target": "office"})()
    item = babilong_item(sample, byte_tok, BabilongTrainData())
    answer = [t for t in item["labels"] if t != -100][:-1]
    assert byte_tok.decode(answer).strip() == "office"
    everything = babilong_item(sample, byte_tok, BabilongTrainData(loss_on="all"))
    assert everything["labels"] == everything["input_ids"]


def test_text_blocks_are_packed_to_seq_len(tmp_path, byte_tok):
    assert pack_blocks(list(range(10)), 4) == [{"input_ids": [0, 1, 2, 3]}, {"input_ids": [4, 5, 6, 7]}]
    (tmp_path / "a.txt").write_text("hello world. " * 40)
    train, val = build_items(TextData(paths=[tmp_path], seq_len=32, val_samples=2), byte_tok)
    assert len(val) == 2 and all(len(b["input_ids"]) == 32 for b in train + val)
    assert len(train) + len(val) == (13 * 40 + 1) // 32
