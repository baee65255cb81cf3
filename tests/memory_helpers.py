"""Shared builders for the memory tests."""

from __future__ import annotations

import torch

from hercules.memory import MemoryConfig, NeuralMemory

MODELS = [
    {"kind": "mlp", "depth": 2, "expansion": 2.0},
    {"kind": "mlp", "depth": 3, "activation": "silu"},
    {"kind": "swiglu"},
    {"kind": "linear", "init": "normal"},
]
RULES = [{"kind": "titans"}, {"kind": "titans", "momentum": False, "forgetting": False}, {"kind": "delta"}]


def memory_pair(dim: int = 16, seed: int = 0, **config) -> tuple[NeuralMemory, NeuralMemory]:
    """The same memory twice, with the fast and the naive implementation (larger rates for stronger tests)."""
    config.setdefault("rule", {"kind": "titans", "max_lr": 0.5, "init_forget": 0.1, "init_momentum": 0.6})
    torch.manual_seed(seed)
    fast = NeuralMemory(dim, MemoryConfig(**config))
    naive = NeuralMemory(dim, MemoryConfig(**config, implementation="naive"))
    naive.load_state_dict(fast.state_dict())
    return fast, naive


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| / max |b| (the reference is ``b``)."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
