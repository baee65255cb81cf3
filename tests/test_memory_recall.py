"""The memory really memorises: random key→value pairs written into it are read back; α = 1 forgets them.

A memory that silently returned its input (or nothing) fails these tests: the values are unrelated to the keys.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hercules.memory import MemoryConfig, NeuralMemory

D_HEAD, PAIRS, EPOCHS = 32, 16, 60


def _key_value_memory(model: dict, forget_logit: float) -> NeuralMemory:
    """A layer wired so that token [key, value] writes key→value and token [key, 0] reads at key."""
    cfg = MemoryConfig(
        model=model,
        rule={"kind": "titans", "max_lr": 0.2},
        chunk_size=PAIRS,
        conv_kernel=0,
        qk_norm=False,
        input_norm=False,
        dim_head=D_HEAD,
    )
    torch.manual_seed(0)
    memory = NeuralMemory(2 * D_HEAD, cfg)
    eye, zero = torch.eye(D_HEAD), torch.zeros(D_HEAD, D_HEAD)
    with torch.no_grad():
        memory.to_qkv.weight.copy_(torch.cat([torch.cat([eye, zero], 1)] * 2 + [torch.cat([zero, eye], 1)]))
        memory.out_proj.weight.copy_(torch.cat([eye, zero]))
        for proj, bias in ((memory.rule.lr, 10.0), (memory.rule.mom, 0.0), (memory.rule.forget, forget_logit)):
            proj.weight.zero_()
            proj.bias.fill_(bias)
    return memory


def _write_then_read(memory: NeuralMemory) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    keys = F.normalize(torch.randn(1, PAIRS, D_HEAD, generator=gen), dim=-1)
    values = F.normalize(torch.randn(1, PAIRS, D_HEAD, generator=gen), dim=-1)
    writes = torch.cat([keys, values], -1).repeat(1, EPOCHS, 1)
    reads = torch.cat([keys, torch.zeros_like(values)], -1)
    with torch.no_grad():
        y, _ = memory(torch.cat([writes, reads], 1))
    return F.cosine_similarity(y[:, -PAIRS:, :D_HEAD], values, dim=-1)[0], keys


@pytest.mark.parametrize("model", [{"kind": "mlp", "depth": 2, "expansion": 4.0}, {"kind": "linear"}, {"kind": "swiglu", "expansion": 4.0}])
def test_written_pairs_are_recalled(model):
    cos, _ = _write_then_read(_key_value_memory(model, forget_logit=-30.0))
    assert cos.min() >= 0.9, cos


def test_memory_before_writing_does_not_know_the_values():
    memory = _key_value_memory({"kind": "mlp", "depth": 2, "expansion": 4.0}, forget_logit=-30.0)
    gen = torch.Generator().manual_seed(1)
    keys = F.normalize(torch.randn(1, PAIRS, D_HEAD, generator=gen), dim=-1)
    values = F.normalize(torch.randn(1, PAIRS, D_HEAD, generator=gen), dim=-1)
    with torch.no_grad():
        y, _ = memory(torch.cat([keys, torch.zeros_like(values)], -1))
    assert F.cosine_similarity(y[..., :D_HEAD], values, dim=-1).abs().mean() < 0.3


def test_full_forgetting_erases_the_pairs():
    cos, _ = _write_then_read(_key_value_memory({"kind": "mlp", "depth": 2, "expansion": 4.0}, forget_logit=30.0))
    assert cos.mean() < 0.5, cos
