"""Recipe schema, YAML loading, --set overrides, one-line errors, and training items built from data sections."""

from __future__ import annotations

import sys

import pytest

from hercules.recipes.data import babilong_item, build_items
from hercules.recipes.loading import RecipeError, apply_overrides, load_recipe, validate_recipe
from hercules.recipes.schema import BabilongTrainData, LanguageModelData

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
         "does not match any of the expected tags: 'babilong', 'lm'"),
        ({"training": {"max_steps": 1}, "data": {"kind": "babilong", "colour": 1}},
         "data.babilong.colour: unknown field; allowed: answer, few_shot, kind, lengths,"),
        ({"training": {"max_steps": 1}}, "training needs a data section"),
    ],
)
def test_errors_name_field_value_and_allowed_values_on_one_line(change, expected):
    with pytest.raises(RecipeError) as info:
        validate_recipe(BASE | change)
    message = str(info.value)
    assert expected in message
    assert all(line.startswith("recipe: ") for line in message.splitlines())


def test_the_two_segment_lengths_must_agree_and_either_alone_is_the_source():
    evaluation = BASE["evaluation"]
    with pytest.raises(RecipeError, match="augment.segment_length=64 and evaluation.segment_length=128 disagree"):
        validate_recipe(BASE | {"augment": {"segment_length": 64}, "evaluation": evaluation | {"segment_length": 128}})
    same = validate_recipe(BASE | {"augment": {"segment_length": 64}, "evaluation": evaluation | {"segment_length": 64}})
    assert same.evaluation.segment_length == same.augment.segment_length == 64


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
        first = next(i for i, t in enumerate(labels) if t != -100)
        assert labels[first:] == ids[first:] and first > len(ids) // 2  # the answer only, at the end
    sample = type("S", (), {"task": "qa1", "context": "Mary went to the office.", "question": "Where is Mary?",
                            "target": "office"})()
    item = babilong_item(sample, byte_tok, BabilongTrainData())
    assert byte_tok.decode([t for t in item["labels"] if t != -100][:-1]) == "office"
    everything = babilong_item(sample, byte_tok, BabilongTrainData(loss_on="all"))
    assert everything["labels"] == everything["input_ids"]


def test_lm_blocks_hold_out_validation_first(tmp_path, byte_tok):
    (tmp_path / "a.txt").write_text("\n\n".join(f"paragraph {i} " * 5 for i in range(200)))
    settings = LanguageModelData(source="files", files=[tmp_path], block_size=32, num_blocks=10, val_blocks=3)
    train, val = build_items(settings, byte_tok)
    assert len(train) == 10 and len(val) == 3
    assert all(len(b["input_ids"]) == 32 for b in train + val)
    assert val[0]["input_ids"] == byte_tok("paragraph 0 ", add_special_tokens=False)["input_ids"] * 2 + \
        byte_tok("paragraph 0 ", add_special_tokens=False)["input_ids"][:8]
    too_much = settings.model_copy(update={"num_blocks": 10_000, "val_blocks": 10_000})
    with pytest.raises(ValueError, match="val_blocks"):
        build_items(too_much, byte_tok)


def test_sentence_answers_follow_the_location_prompt(byte_tok):
    from hercules.data.babilong import BabilongSample
    from hercules.recipes.data import answer_sentence

    assert answer_sentence("Where is Mary?", "garden") == "Mary is in the garden."
    assert answer_sentence("Where is the apple?", "kitchen") == "The apple is in the kitchen."
    assert answer_sentence("What is the hallway north of?", "office") is None
    sample = BabilongSample("qa1", "0k", 0, "Mary went to the garden.", "Where is Mary?", "garden")
    item = babilong_item(sample, byte_tok, BabilongTrainData(answer="sentence"))
    assert byte_tok.decode([t for t in item["labels"] if t != -100][:-1]) == "Mary is in the garden."
    other = BabilongSample("qa4", "0k", 0, "The office is north of the hallway.", "What is north of the hallway?",
                           "office")
    item = babilong_item(other, byte_tok, BabilongTrainData(answer="sentence"))
    assert byte_tok.decode([t for t in item["labels"] if t != -100][:-1]) == "office"


PLUGIN_MODULE = '''
from typing import Literal

from hercules.memory import register_memory_model
from hercules.memory.models.base import MemoryModel
from hercules.registry import PluginConfig


class DoubledConfig(PluginConfig):
    kind: Literal["doubled-linear-plugin"] = "doubled-linear-plugin"


@register_memory_model("doubled-linear-plugin", DoubledConfig)
class DoubledLinear(MemoryModel):
    def __init__(self, config, dim, heads):
        super().__init__(config, dim, heads)
        self.add_weight("w", dim, dim)

    def functional(self, weights, x):
        return 2 * x @ weights["w"]
'''


def test_recipe_plugins_are_imported_before_validation(tmp_path, monkeypatch):
    """A recipe can name a component that a third-party module registers, by listing the module under plugins."""
    (tmp_path / "recipe_plugin_mod.py").write_text(PLUGIN_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    augment = {"injection": {"kind": "mal"}, "layers": [0],
               "memory": {"model": {"kind": "doubled-linear-plugin"}}}
    with pytest.raises(RecipeError, match="doubled-linear-plugin"):  # unknown until its module is imported
        validate_recipe(BASE | {"augment": augment})
    try:
        recipe = validate_recipe(BASE | {"augment": augment, "plugins": ["recipe_plugin_mod"]})
        assert type(recipe.augment.memory.model).__name__ == "DoubledConfig"
    finally:
        from hercules.memory import MEMORY_MODELS

        if "doubled-linear-plugin" in MEMORY_MODELS:
            MEMORY_MODELS.unregister("doubled-linear-plugin")
        sys.modules.pop("recipe_plugin_mod", None)
    with pytest.raises(RecipeError, match=r"plugins: cannot import 'no_such_plugin_mod' \(ModuleNotFoundError"):
        validate_recipe(BASE | {"plugins": ["no_such_plugin_mod"]})


def test_every_person_asks_each_persons_last_place_after_the_samples_own_question(byte_tok):
    from hercules.data.babi import person_places
    from hercules.data.babilong import BabilongSample

    facts = ("Mary went to the kitchen.", "John moved to the office.", "Sandra went back to the hallway.",
             "Mary journeyed to the garden.")
    assert person_places(facts) == {"Mary": "garden", "John": "office", "Sandra": "hallway"}
    sample = BabilongSample("qa1", "0k", 0, " ".join(facts), "Where is John?", "office", facts=facts)
    settings = BabilongTrainData(answer="sentence", use_chat_template=False, few_shot=False, segment_length=32)
    one = babilong_item(sample, byte_tok, settings)
    every = babilong_item(sample, byte_tok, settings.model_copy(update={"questions": "every_person"}))
    answers = byte_tok.decode([t for t in every["labels"] if t != -100][:-1])
    assert answers.startswith("John is in the office.")  # the sample's own question first, as evaluated
    assert sorted(answers.removeprefix("John is in the office.").split(".")[:-1]) == \
        ["Mary is in the garden", "Sandra is in the hallway"]
    assert every["input_ids"][: len(one["input_ids"]) - 1] == one["input_ids"][:-1]  # context and prompt as before
    assert every["segment_lengths"][:-1] == one["segment_lengths"][:-1]  # only the final segment grows
    assert sum(every["segment_lengths"]) == len(every["input_ids"]) == len(every["labels"])
    assert every["input_ids"][-1] == byte_tok.eos_token_id == every["labels"][-1]
    unlabelled = byte_tok.decode([t for t, label in zip(every["input_ids"], every["labels"], strict=True) if label == -100])
    assert unlabelled.count("Question: Where is") == 3  # every question is prompt, never a target


@pytest.mark.parametrize(("change", "field"), [({"tasks": ["qa1", "qa2"]}, "tasks"),
                                               ({"use_chat_template": True}, "use_chat_template")])
def test_every_person_names_what_it_cannot_work_with(change, field):
    with pytest.raises(ValueError, match=field):
        BabilongTrainData(**({"questions": "every_person", "use_chat_template": False} | change))
