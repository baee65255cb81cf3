"""MAC with ``write='attention_output'``: the memory learns from the attention output (as in Titans), the layer
runs once per memory chunk, and the result still equals the backbone at init and token-by-token decoding."""

from __future__ import annotations

import pytest
import torch

import hercules
from hercules.backbones.compat import cache_argument
from hercules.backbones.tiny import FAMILIES, tiny_model
from hercules.injection import MemoryStates
from hercules.injection.chunk_recurrent import chunk_spans

CONFIG = {
    "injection": {"kind": "mac", "write": "attention_output"},
    "layers": [0, -1],
    "memory": {"chunk_size": 4},
}


def _ids(length: int = 21) -> torch.Tensor:
    return torch.randint(3, 250, (2, length), generator=torch.Generator().manual_seed(0))


def _open_gates(model: torch.nn.Module) -> None:
    """Give the retrieval paths non-zero weights so that the memory changes the output."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "gate.scale" in name or "context_proj" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def test_chunk_spans_cut_at_memory_chunk_boundaries():
    assert list(chunk_spans(0, 10, 4)) == [(0, 4), (4, 8), (8, 10)]
    assert list(chunk_spans(3, 6, 4)) == [(0, 1), (1, 5), (5, 6)]
    assert list(chunk_spans(2, 1, 4)) == [(0, 1)]


@pytest.mark.parametrize("family", FAMILIES)
def test_identity_at_init(family):
    base, ids = tiny_model(family), _ids()
    model = hercules.augment(tiny_model(family), CONFIG)
    with torch.no_grad():
        assert (model(ids).logits - base(ids).logits).abs().max() <= 1e-6
    prompt = ids[:1, :6]
    expected = base.generate(prompt, max_new_tokens=4, do_sample=False)
    assert torch.equal(model.generate(prompt, max_new_tokens=4, do_sample=False), expected)


@pytest.mark.parametrize("family", ["llama", "gemma3"])  # gemma3: the sliding-window layer's cache is cropped
def test_teacher_forced_equals_token_by_token(family):
    model, ids = hercules.augment(tiny_model(family), CONFIG), _ids()
    _open_gates(model)
    with torch.no_grad():
        whole = model(ids).logits
        assert (whole - tiny_model(family)(ids).logits).abs().max() > 1e-2  # the memory is in play
        out = model(ids[:, :3], use_cache=True)
        steps, cache = [out.logits], out.past_key_values
        for t in range(3, ids.shape[1]):
            out = model(ids[:, t : t + 1], **{cache_argument(model): cache}, use_cache=True)
            steps.append(out.logits)
    assert (torch.cat(steps, 1) - whole).abs().max() <= 1e-4


@pytest.mark.parametrize(("write", "reaches"), [("attention_output", True), ("input", False)])
def test_what_the_memory_learns_from(write, reaches):
    """With write='attention_output' the memory's state depends on the layer's attention output projection."""
    config = CONFIG | {"injection": {"kind": "mac", "write": write}, "layers": [1]}
    model, states = hercules.augment(tiny_model("llama"), config), MemoryStates()
    model(_ids(12), memory_states=states)
    weights = sum(w.sum() for w in states[1].weights.values())
    o_proj = model.model.layers[1].base_layer.self_attn.o_proj.weight
    (grad,) = torch.autograd.grad(weights, o_proj, allow_unused=True)
    assert (grad is not None and grad.abs().sum() > 0) == reaches
