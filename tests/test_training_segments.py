"""Training across segments: the trainer's loss is segmented_forward's, checkpointing and truncation behave as
documented, the curriculum holds, and a stopped segment-trained run resumes exactly."""

from __future__ import annotations

import copy

import pytest
import torch

import hercules
from hercules.backbones.tiny import tiny_model
from hercules.data.recall import recall_items
from hercules.injection.peft import PeftSettings, apply_peft
from hercules.injection.segments import segmented_forward
from hercules.training import Trainer, TrainingSettings
from hercules.training.batches import collate
from hercules.training.config import SegmentSettings, TrackingSettings
from hercules.training.segment_loss import segmented_lm_loss

QUIET = TrackingSettings(progress=False, plots=False)


def memory_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = hercules.augment(tiny_model("llama", seed=seed), {"layers": "all", "memory": {"chunk_size": 4}})
    return apply_peft(model, PeftSettings(preset="full"))


def data(count: int = 8, gaps: int = 2, seed: int = 0) -> list[dict]:
    return recall_items(count, pairs=3, gaps=gaps, segment_length=8, vocab_size=259, seed=seed)


def settings(**kw) -> TrainingSettings:
    base = dict(max_steps=2, batch_size=2, lr=1e-2, weight_decay=0.0, max_grad_norm=None, validate_at_start=False,
                segments=SegmentSettings(), checkpoint={"save_final": False})
    return TrainingSettings(**(base | kw))


def _grads(model, loss) -> list[torch.Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


@pytest.mark.parametrize("checkpointing", [False, True])
def test_loss_and_gradients_equal_segmented_forward(checkpointing):
    model = memory_model()
    items = data(2)
    batch = collate(items, 0)
    lengths = items[0]["segment_lengths"]
    ours = segmented_lm_loss(model, batch, lengths, activation_checkpointing=checkpointing)
    reference = segmented_forward(model, batch["input_ids"], labels=batch["labels"], segment_lengths=lengths).loss
    torch.testing.assert_close(ours, reference)
    for a, b in zip(_grads(model, ours), _grads(model, reference), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_model_without_memory_runs_only_its_labelled_segments_and_loses_nothing():
    torch.manual_seed(0)
    twin = apply_peft(tiny_model("llama"), PeftSettings(preset="full"))
    items = data(2, gaps=3)
    batch = collate(items, 0)
    lengths = items[0]["segment_lengths"]
    calls = []
    hook = twin.register_forward_pre_hook(lambda *a: calls.append(1))
    ours = segmented_lm_loss(twin, batch, lengths)
    hook.remove()
    labelled = [i for i, n in enumerate(lengths)
                if (batch["labels"][:, sum(lengths[:i]):sum(lengths[:i + 1])][:, 1:] != -100).any()]
    assert len(calls) == len(labelled) < len(lengths)  # the pairs and filler segments carry nothing: skipped
    reference = segmented_forward(twin, batch["input_ids"], labels=batch["labels"], segment_lengths=lengths).loss
    torch.testing.assert_close(ours, reference)
    for a, b in zip(_grads(twin, ours), _grads(twin, reference), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_truncated_backpropagation_equals_detaching_between_segments():
    model = memory_model()
    with torch.no_grad():  # leave the identity at initialisation, where no gradient crosses a segment boundary
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    items = data(2)
    batch = collate(items, 0)
    lengths = items[0]["segment_lengths"]
    ours = segmented_lm_loss(model, batch, lengths, bptt_segments=1)
    reference = segmented_forward(model, batch["input_ids"], labels=batch["labels"], segment_lengths=lengths,
                                  detach_between=True).loss
    full = segmented_lm_loss(model, batch, lengths)
    g_ours, g_ref, g_full = _grads(model, ours), _grads(model, reference), _grads(model, full)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert any((a - c).abs().max() > 1e-6 for a, c in zip(g_ours, g_full, strict=True))


def test_trainer_steps_equal_a_hand_written_loop(tmp_path):
    """Two AdamW steps of the trainer == the same steps written out over segmented_forward. A large epsilon keeps
    AdamW from amplifying the last-bit differences of near-zero gradients (logits at labelled positions only here,
    every position there; BLAS blocking depends on the thread count) into whole steps."""
    items = data(8)
    trainer = Trainer(memory_model(), settings(eps=1.0), items, tmp_path, tracking=QUIET)
    model = memory_model()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0, eps=1.0)
    for g in range(2):
        chosen = [items[j] for j in trainer.stream.indices(g)]
        batch = collate(chosen, 0)
        loss = segmented_forward(model, batch["input_ids"], attention_mask=batch["attention_mask"],
                                 labels=batch["labels"], segment_lengths=chosen[0]["segment_lengths"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    trainer.train()
    trained = dict(trainer.unwrapped_model().named_parameters())
    for name, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(trained[name], p, rtol=1e-4, atol=1e-6, msg=name)


def _saved_bytes(model, items, checkpointing: bool) -> int:
    batch, total = collate(items, 0), [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        segmented_lm_loss(model, batch, items[0]["segment_lengths"], activation_checkpointing=checkpointing)
    return total[0]


def test_activation_checkpointing_keeps_memory_flat_in_segments():
    """What the backward keeps grows per segment by the carried memory states only, far less than without."""
    model = memory_model()
    short, long = data(2, gaps=1), data(2, gaps=9)
    grow_plain = _saved_bytes(model, long, False) - _saved_bytes(model, short, False)
    grow_ckpt = _saved_bytes(model, long, True) - _saved_bytes(model, short, True)
    assert grow_ckpt < 0.25 * grow_plain, (grow_ckpt, grow_plain)


def test_curriculum_uses_only_short_items_until_its_step(tmp_path):
    items = data(6, gaps=0) + data(6, gaps=4, seed=1)
    s = settings(max_steps=6, segments=SegmentSettings(curriculum=[{"until_step": 3, "max_segments": 2}]))
    trainer = Trainer(memory_model(), s, items, tmp_path, tracking=QUIET)
    seen = [[len(it["segment_lengths"]) for it in _items_of(trainer, step)] for step in range(6)]
    assert all(n <= 2 for step in seen[:3] for n in step)
    assert any(n > 2 for step in seen[3:] for n in step)


def _items_of(trainer, step):
    pool, stream = trainer._stream(trainer.settings.segments.max_segments(step))
    return [trainer.train_items[pool[j]] for j in stream.indices(step)]


def test_segmented_items_need_the_segments_setting(tmp_path):
    with pytest.raises(ValueError, match="set training.segments"):
        Trainer(memory_model(), settings(segments=None), data(4), tmp_path, tracking=QUIET)
    plain = [{"input_ids": [5, 6, 7, 8]}] * 4
    with pytest.raises(ValueError, match="no segment_lengths"):
        Trainer(memory_model(), settings(), plain, tmp_path, tracking=QUIET)


def test_stopped_segment_run_resumes_exactly(tmp_path):
    items, val = data(8), data(2, seed=9)
    s = settings(max_steps=4, checkpoint={"every": 2}, segments=SegmentSettings(bptt_segments=2))
    full = Trainer(memory_model(), s, items, tmp_path / "a", val_items=val, tracking=QUIET)
    full.train()
    first = Trainer(memory_model(), s, items, tmp_path / "b", val_items=val, tracking=QUIET)
    first.train(stop_at_step=2)
    resumed = Trainer(memory_model(seed=3), s.model_copy(update={"resume": "latest"}), items, tmp_path / "b",
                      val_items=val, tracking=QUIET)
    assert resumed.state.step == 2
    resumed.train()
    a = dict(full.unwrapped_model().named_parameters())
    for name, p in resumed.unwrapped_model().named_parameters():
        assert torch.equal(a[name], p), name
    assert copy.deepcopy(full.state.val_loss) == resumed.state.val_loss


def test_micro_batches_share_one_layout_and_layouts_mix_over_an_epoch(tmp_path):
    from hercules.training.batches import LayoutBatchStream, layout_key

    items = data(9, gaps=0) + data(7, gaps=1, seed=1) + data(8, gaps=3, seed=2)
    stream = LayoutBatchStream([layout_key(it) for it in items], batch_size=2, seed=0)
    assert stream.batches_per_epoch == 4 + 3 + 4  # incomplete batches of a layout are dropped
    epoch = [stream.indices(g) for g in range(stream.batches_per_epoch)]
    assert all(len({layout_key(items[i]) for i in batch}) == 1 for batch in epoch)
    seen = [i for batch in epoch for i in batch]
    assert len(seen) == len(set(seen))  # no item twice in an epoch
    assert len({layout_key(items[b[0]]) for b in epoch[:4]}) > 1  # layouts are shuffled together
    again = LayoutBatchStream([layout_key(it) for it in items], batch_size=2, seed=0)
    assert [again.indices(g) for g in range(stream.batches_per_epoch)] == epoch
    # a trainer over mixed layouts trains and validates (validation batches never span two layouts)
    s = settings(max_steps=3, batch_size=2, validate_at_start=True)
    trainer = Trainer(memory_model(), s, items, tmp_path, val_items=items[:3] + items[-3:], tracking=QUIET)
    assert trainer.train().steps == 3
