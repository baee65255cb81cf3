"""The kept frozen prefix: a segment loss that runs only the trained top layers equals the full loss and gradients,
computes each segment's prefix once, and trains as the uncached trainer does."""

from __future__ import annotations

import pytest
import torch

import hercules
from hercules.backbones.tiny import tiny_model
from hercules.data.recall import recall_items
from hercules.injection.peft import PeftSettings, apply_peft
from hercules.training import Trainer, TrainingSettings
from hercules.training.batches import collate
from hercules.training.config import SegmentSettings, TrackingSettings
from hercules.training.prefix_cache import FrozenPrefix
from hercules.training.segment_loss import segmented_lm_loss

QUIET = TrackingSettings(progress=False, plots=False)


def top_trained(family: str = "llama", layers: int = 4, top: int = 2, seed: int = 0) -> torch.nn.Module:
    """Memory and LoRA in the top ``top`` layers only, as the SmolLM2 recipes train."""
    torch.manual_seed(seed)
    extra = {"sliding_window": 4} if family == "gemma3" else {}  # a window shorter than a segment: masks differ
    model = tiny_model(family, seed=seed, num_hidden_layers=layers, **extra)
    trained = list(range(layers - top, layers))
    model = hercules.augment(model, {"layers": trained, "memory": {"chunk_size": 4}, "segment_length": 8})
    targets = [f"layers.{i}.self_attn.{p}" for i in trained for p in ("q_proj", "v_proj")]
    return apply_peft(model, PeftSettings(preset="memory_lora", lora_r=4, target_modules=targets))


def items(count: int = 4, seed: int = 0) -> list[dict]:
    return recall_items(count, pairs=3, gaps=2, segment_length=8, vocab_size=259, seed=seed)


def _loss_and_grads(model, batch, lengths, prefix=None, checkpointing=False):
    loss = segmented_lm_loss(model, batch, lengths, activation_checkpointing=checkpointing, prefix=prefix)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss, [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


@pytest.mark.parametrize("family", ["llama", "gemma3"])  # gemma3: sliding and global layers picked by index
@pytest.mark.parametrize("checkpointing", [False, True])
def test_loss_and_gradients_equal_the_full_model(family, checkpointing):
    model = top_trained(family, layers=5, top=2)
    assert FrozenPrefix.start_of(model) == 3
    data = items()
    batch, lengths = collate(data, 0), data[0]["segment_lengths"]
    prefix = FrozenPrefix(model, 3)
    expected, expected_grads = _loss_and_grads(model, batch, lengths)
    for _ in range(2):  # first visit computes the prefix, the second reads it
        loss, grads = _loss_and_grads(model, batch, lengths, prefix, checkpointing)
        torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
        for g, e in zip(grads, expected_grads, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    assert len(model.base_model.model.model.layers) == 5  # the layer list is whole again


def test_each_segment_prefix_is_computed_once_and_keyed_by_its_tokens():
    model = top_trained()
    prefix, data = FrozenPrefix(model, FrozenPrefix.start_of(model)), items(3)
    calls = []
    compute = prefix._compute
    prefix._compute = lambda *a: calls.append(1) or compute(*a)
    batch, lengths = collate(data, 0), data[0]["segment_lengths"]
    for _ in range(3):
        segmented_lm_loss(model, batch, lengths, prefix=prefix)
    assert len(calls) == len(lengths)  # once per segment of the batch, not once per visit
    starts = [0, *torch.tensor(lengths).cumsum(0)[:-1].tolist()]
    distinct = {tuple(it["input_ids"][s:s + n]) for it in data for s, n in zip(starts, lengths, strict=True)}
    assert len(prefix.cache) == len(distinct)
    other = collate(items(3, seed=5), 0)
    segmented_lm_loss(model, other, lengths, prefix=prefix)  # new tokens: computed, not confused with the old
    assert len(calls) == 2 * len(lengths)


def test_a_twin_keeps_the_prefix_of_its_labelled_segments_only():
    torch.manual_seed(0)
    twin = apply_peft(tiny_model("llama", num_hidden_layers=4),
                      PeftSettings(preset="memory_lora", lora_r=4, target_modules=["layers.3.self_attn.q_proj"]))
    data = items(3)
    prefix = FrozenPrefix(twin, FrozenPrefix.start_of(twin))
    assert prefix.start == 3
    kept = prefix.fill(twin, data)
    assert kept == len(data)  # one labelled (query) segment per item; the pairs and filler never run
    batch, lengths = collate(data, 0), data[0]["segment_lengths"]
    calls = []
    compute = prefix._compute
    prefix._compute = lambda *a: calls.append(1) or compute(*a)
    loss = segmented_lm_loss(twin, batch, lengths, prefix=prefix)
    assert not calls  # everything the loss runs was filled
    torch.testing.assert_close(loss, segmented_lm_loss(twin, batch, lengths), rtol=1e-6, atol=1e-6)


def test_training_with_the_kept_prefix_follows_the_uncached_run(tmp_path):
    data = items(8)
    results = []
    for frozen in (False, True):
        model = top_trained()
        s = TrainingSettings(max_steps=3, batch_size=2, lr=1e-2, weight_decay=0.0, validate_at_start=False,
                             segments=SegmentSettings(frozen_prefix=frozen, activation_checkpointing=False),
                             checkpoint={"save_final": False})
        Trainer(model, s, data, tmp_path / str(frozen), tracking=QUIET).train()
        results.append({n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})
    for name, value in results[0].items():
        torch.testing.assert_close(results[1][name], value, rtol=1e-4, atol=1e-6, msg=name)


def test_a_model_trained_from_its_first_layer_has_no_frozen_prefix(tmp_path):
    model = hercules.augment(tiny_model("llama"), {"layers": "all", "segment_length": 8})
    model = apply_peft(model, PeftSettings(preset="memory"))
    assert FrozenPrefix.start_of(model) == 0
    s = TrainingSettings(max_steps=1, segments=SegmentSettings(frozen_prefix=True))
    with pytest.raises(ValueError, match="frozen_prefix"):
        Trainer(model, s, items(2), tmp_path, tracking=QUIET)


def test_the_trainer_fills_the_prefix_in_batches_before_its_first_step(tmp_path):
    """Every segment of the training and validation items is kept before step 1 (segments of one length batched),
    so that the steps compute no prefix: the first epoch no longer runs the frozen layers one item at a time."""
    data, val = items(8), items(2, seed=9)
    s = TrainingSettings(max_steps=4, batch_size=1, lr=1e-2, validate_at_start=True, eval_every=2,
                         segments=SegmentSettings(frozen_prefix=True, activation_checkpointing=False),
                         checkpoint={"save_final": False})
    trainer = Trainer(top_trained(), s, data, tmp_path, val_items=val, tracking=QUIET)
    lengths = data[0]["segment_lengths"]
    starts = [0, *torch.tensor(lengths).cumsum(0)[:-1].tolist()]
    distinct = {tuple(it["input_ids"][a:a + n]) for it in data + val for a, n in zip(starts, lengths, strict=True)}
    assert len(trainer.prefix.cache) == len(distinct)
    calls = []
    compute = trainer.prefix._compute
    trainer.prefix._compute = lambda *a: calls.append(1) or compute(*a)
    trainer.train()
    assert calls == []
