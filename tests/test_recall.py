"""Segmented MQAR: the data's layout, the accuracy by mode, and a recipe with its twins end to end."""

from __future__ import annotations

import pytest
import torch

import hercules
from hercules.backbones.tiny import tiny_model
from hercules.data.recall import RecallVocab, recall_items
from hercules.evaluation.recall import recall_accuracy
from hercules.recipes.schema import Recipe


def test_layout_pairs_then_filler_then_queries():
    vocab = RecallVocab(259, num_keys=20, num_values=30)
    items = recall_items(5, pairs=6, gaps=3, segment_length=8, vocab_size=259, seed=0, num_keys=20, num_values=30)
    for item in items:
        ids, labels, lengths = item["input_ids"], item["labels"], item["segment_lengths"]
        assert lengths == [8, 8] + [8] * 3 + [8] and sum(lengths) == len(ids) == len(labels)
        keys, values = ids[0:12:2], ids[1:12:2]
        assert len(set(keys)) == 6 and all(3 <= k < 23 for k in keys) and all(23 <= v < 53 for v in values)
        lo, hi = vocab.filler
        assert all(lo <= t < hi for t in ids[12:40])  # filler only between the pairs and the queries
        pairs = dict(zip(keys, values, strict=True))
        tail, tail_labels = ids[40:], labels[40:]
        assert all(label == -100 for label in labels[:40]) and tail_labels[0::2] == [-100] * 4
        for key, value, label in zip(tail[0::2], tail[1::2], tail_labels[1::2], strict=True):
            assert pairs[key] == value == label  # each query is a key of the pairs, the label its value


def test_samples_do_not_depend_on_the_count_and_vocab_is_checked():
    assert recall_items(3, 4, 1, 16, 259, seed=7)[2] == recall_items(10, 4, 1, 16, 259, seed=7)[2]
    with pytest.raises(ValueError, match="num_keys"):
        RecallVocab(100, num_keys=60, num_values=40)


def test_accuracy_modes_on_a_model_that_copies_values():
    """A 'model' whose logits put the right value at every query: 100 % with any mode; switching memory off or
    reading segments alone changes what a real model sees, not how accuracy is counted."""
    items = recall_items(4, pairs=3, gaps=1, segment_length=8, vocab_size=259, seed=0)

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(()))

        def forward(self, ids, **_):
            logits = torch.zeros(*ids.shape, 259)
            for b, row in enumerate(ids.tolist()):
                table = dict(zip(row[0:6:2], row[1:6:2], strict=True))  # this sample's own pairs
                for t, tok in enumerate(row):
                    logits[b, t, table.get(tok, 0)] = 1.0
            return type("Out", (), {"logits": logits})

    assert recall_accuracy(Oracle(), items, "full_attention") == {(3, 1): 1.0}
    model = hercules.augment(tiny_model("llama"), {"layers": [0]})
    acc = recall_accuracy(model, items, "memory")
    assert set(acc) == {(3, 1)} and 0 <= acc[(3, 1)] <= 1


RECALL = {
    "name": "recall-test", "backbone": {"name": "tiny:llama"},
    "augment": {"layers": "all", "memory": {"chunk_size": 4}},
    "peft": {"preset": "full"},
    "data": {"kind": "recall", "pairs": 2, "gaps": [1], "segment_length": 8, "samples": 8, "val_samples": 2},
    "training": {"max_steps": 2, "batch_size": 4, "segments": {}, "validate_at_start": False,
                 "checkpoint": {"save_final": False}},
    "recall_evaluation": {"pairs": [2], "gaps": [1, 2], "samples": 4},
    "baselines": ["no_memory", "full_attention"],
    "tracking": {"progress": False, "plots": False},
}


def test_recall_recipe_trains_twins_and_compares(tmp_path):
    from hercules.recipes.runner import run_recipe

    summary = run_recipe(Recipe.model_validate(RECALL | {"output_dir": tmp_path}))
    assert set(summary["recall"]["as_trained"]) == {"2/1", "2/2"}
    assert set(summary["twins"]) == {"no_memory", "full_attention"}
    twin = Recipe.model_validate(RECALL | {"output_dir": tmp_path})
    assert (twin.run_dir() / "twins" / "no_memory" / "summary.json").exists()
    assert summary["memory_diagnostics"], "the gates' first and last values are reported"
    from pathlib import Path

    assert Path(summary["recall_figure"]).name == "recall.png" and Path(summary["recall_figure"]).exists()
    # the twins trained for as many steps as the model with memory
    import json

    for name in ("no_memory", "full_attention"):
        twin_summary = json.loads((twin.run_dir() / "twins" / name / "summary.json").read_text())
        assert twin_summary["training"]["steps"] == summary["training"]["steps"] == 2
        assert "recall" in twin_summary


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"training": {"max_steps": 2}}, "set training.segments"),
        ({"baselines": ["no_memory"], "peft": None}, "baselines need peft"),
        ({"data": {"kind": "babilong", "segment_length": 64}, "recall_evaluation": None,
          "evaluation": {"tasks": ["qa1"], "lengths": ["1k"], "segment_length": 64}}, "full_attention is defined"),
        ({"data": {"kind": "babilong", "segment_length": 64}, "recall_evaluation": None, "baselines": [],
          "evaluation": {"tasks": ["qa1"], "lengths": ["1k"], "segment_length": 128}}, "set both alike"),
    ],
)
def test_recipe_rules_for_segments_and_baselines(change, message):
    with pytest.raises(ValueError, match=message):
        Recipe.model_validate(RECALL | change)


def test_babilong_items_in_the_segmented_evaluation_layout():
    """A long sample: context segments, then the prompt with the memory note, question and answer."""
    from hercules.backbones.tokenizer import byte_tokenizer
    from hercules.data.babilong import BabilongSample
    from hercules.data.prompts import encode_prompts
    from hercules.evaluation.segmented import MEMORY_NOTE
    from hercules.recipes.data import babilong_item
    from hercules.recipes.schema import BabilongTrainData

    tok = byte_tokenizer()
    context = "Mary went to the office. " * 12
    sample = BabilongSample("qa1", "1k", 0, context, "Where is Mary?", "office")
    settings = BabilongTrainData(segment_length=64, few_shot=False, use_chat_template=False)
    item = babilong_item(sample, tok, settings)
    context_ids = tok(context, add_special_tokens=False)["input_ids"]
    prompt = encode_prompts([("qa1", MEMORY_NOTE, "Where is Mary?")], tok, False, False)[0]
    assert item["input_ids"] == context_ids + prompt + tok("office", add_special_tokens=False)["input_ids"] + [
        tok.eos_token_id
    ]
    assert item["segment_lengths"][:-1] == [64] * (len(context_ids) // 64) + [len(context_ids) % 64]
    assert item["segment_lengths"][-1] == len(item["input_ids"]) - len(context_ids)
    assert tok.decode([t for t in item["labels"] if t != -100]) == "office<eos>"
    short = babilong_item(BabilongSample("qa1", "0k", 0, "Mary left.", "Where is Mary?", "office"), tok,
                          settings.model_copy(update={"segment_length": 4096}))
    assert short["segment_lengths"] == [len(short["input_ids"])]


@pytest.mark.parametrize("init", ["identity", "random"])
def test_conv_init_decides_whether_keys_see_the_previous_token(init):
    from hercules.memory import MemoryConfig, NeuralMemory

    torch.manual_seed(0)
    memory = NeuralMemory(16, MemoryConfig(conv_init=init, chunk_size=4))
    x = torch.randn(1, 6, 16)
    changed = x.clone()
    changed[:, 2] += 1.0
    base, _ = memory.project(x, None)
    moved, _ = memory.project(changed, None)
    next_key_moved = not torch.allclose(base["k"][:, 3], moved["k"][:, 3])
    assert next_key_moved == (init == "random")


def test_gate_moves_are_read_past_a_torn_last_line(tmp_path):
    from hercules.recipes.twins import diagnostics_moves

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "train", "diag/layer0/gate_mean": 0.1, "diag/layer0/weight_norm": 3}\n'
                    '{"kind": "val", "val_loss": 1.0}\n'
                    '{"kind": "train", "diag/layer0/gate_mean": 0.4}\n{"kind": "tra')
    assert diagnostics_moves(path) == {"diag/layer0/gate_mean": (0.1, 0.4)}
    assert diagnostics_moves(tmp_path / "none.jsonl") == {}
