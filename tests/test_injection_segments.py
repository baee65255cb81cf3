"""Segmented long-input mode: attention per segment, memory carried; memory off == independent segments."""

from __future__ import annotations

import pytest
import torch

import hercules
from hercules.backbones.tiny import tiny_model
from hercules.injection import MemoryStates, memory_disabled, memory_parameters
from hercules.injection.segments import generate_segmented, read_segments, segmented_forward

S = 6


def model_with_open_gates(kind: str = "mac") -> torch.nn.Module:
    torch.manual_seed(0)
    model = hercules.augment(
        tiny_model("llama"), {"injection": kind, "layers": "all", "memory": {"chunk_size": 4}, "segment_length": S}
    )
    with torch.no_grad():
        for name, param in memory_parameters(model):
            if name.endswith("gate.scale") or "context_proj" in name:
                param.normal_(0, 0.5)
    return model


def tokens(length: int, seed: int = 0, batch: int = 2) -> torch.Tensor:
    return torch.randint(3, 259, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", ["mal", "mac", "mag"])
def test_memory_disabled_equals_independent_segments(kind):
    model, x = model_with_open_gates(kind), tokens(17)
    with torch.no_grad(), memory_disabled(model):
        segmented = segmented_forward(model, x).logits
        independent = torch.cat([model(x[:, i : i + S]).logits for i in range(0, 17, S)], dim=1)
    assert (segmented - independent).abs().max() <= 1e-6
    with torch.no_grad():
        enabled = segmented_forward(model, x).logits
        first = model(x[:, :S]).logits
    assert (enabled[:, :S] - first).abs().max() <= 1e-6
    assert (enabled[:, S:] - independent[:, S:]).abs().max() > 1e-3, "the memory must carry the earlier segments"


def test_one_segment_is_the_plain_forward():
    model, x = model_with_open_gates(), tokens(10)
    with torch.no_grad():
        torch.testing.assert_close(segmented_forward(model, x, segment_length=64).logits, model(x).logits)


def test_generation_after_segments_uses_the_carried_memory():
    model, context, prompt = model_with_open_gates(), tokens(14, seed=1, batch=1), tokens(3, seed=2, batch=1)
    out = generate_segmented(model, context, prompt, max_new_tokens=4, do_sample=False)
    states = read_segments(model, context)
    sequence = prompt
    with torch.no_grad():  # greedy decoding without a KV cache, memory seeded from the same states each step
        for _ in range(4):
            logits = model(sequence, memory_states=MemoryStates(states), use_cache=False).logits
            sequence = torch.cat([sequence, logits[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(out, sequence)
    with memory_disabled(model):
        plain = model.generate(prompt, max_new_tokens=4, do_sample=False)
        assert torch.equal(generate_segmented(model, context, prompt, max_new_tokens=4, do_sample=False), plain)


def test_reading_a_context_keeps_the_memory_not_the_logits():
    """read_segments gives the states of segmented_forward while asking each segment for one position's logits, so
    that reading a long context holds one segment at a time (every segment's logits grew with the length)."""
    model, context = model_with_open_gates("mag"), tokens(20, seed=3)
    shapes = []
    hook = model.register_forward_hook(lambda module, args, out: shapes.append(tuple(out.logits.shape)))
    try:
        states = read_segments(model, context)
    finally:
        hook.remove()
    assert shapes == [(2, 1, model.config.vocab_size)] * 4  # segments of 6, 6, 6, 2
    with torch.no_grad():
        expected = segmented_forward(model, context).states
    for layer, state in expected.items():
        for name, weight in state.weights.items():
            assert torch.equal(states[layer].weights[name], weight)
    with pytest.raises(ValueError, match="keep_logits"):  # a loss needs every labelled position's logits
        segmented_forward(model, context, labels=context, keep_logits=False)


def test_segment_loss_and_truncated_backprop():
    model, x = model_with_open_gates(), tokens(13)
    model.train()
    out = segmented_forward(model, x, labels=x, detach_between=True)
    ends = [(i, min(i + S, 13)) for i in range(0, 13, S)]
    manual = torch.nn.functional.cross_entropy(
        torch.cat([out.logits[:, i : e - 1] for i, e in ends], 1).flatten(0, 1),
        torch.cat([x[:, i + 1 : e] for i, e in ends], 1).flatten(),
    )
    torch.testing.assert_close(out.loss, manual)
    out.loss.backward()
    assert all(s.weights[n].grad_fn is None for s in out.states.values() for n in s.weights)
    assert model.model.layers[0].memory.to_qkv.weight.grad.abs().sum() > 0


def test_missing_segment_length_is_an_error():
    with pytest.raises(ValueError, match="segment_length"):
        segmented_forward(hercules.augment(tiny_model("llama")), tokens(4))


def test_a_model_without_memory_reads_each_segment_on_its_own():
    model = tiny_model("llama")
    x = tokens(20)
    out = segmented_forward(model, x, segment_lengths=[8, 8, 4])
    with torch.no_grad():
        pieces = [model(x[:, a:b], use_cache=False).logits for a, b in ((0, 8), (8, 16), (16, 20))]
    torch.testing.assert_close(out.logits, torch.cat(pieces, dim=1))
    assert len(out.states) == 0
