"""Shared builders for the Triton chunk-loop tests (interpreter on CPU, compiled on CUDA)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from memory_helpers import rel_err

from hercules.memory.models.mlp import MLPMemory, MLPMemoryConfig


def problem(rows: int, length: int, dim: int, activation: str, residual: bool, seed: int = 0, depth: int = 2):
    """An MLP memory and float64 inputs with rates in a stable range (every one differentiable)."""
    torch.manual_seed(seed)
    model = MLPMemory(MLPMemoryConfig(depth=depth, activation=activation, residual=residual), dim, rows)
    weights = {n: p.detach().double().requires_grad_() for n, p in model.initial.items()}
    momentum = {n: (0.1 * torch.randn_like(w)).requires_grad_() for n, w in weights.items()}
    qkv = [F.normalize(torch.randn(rows, length, dim, dtype=torch.float64), dim=-1) for _ in range(3)]
    rand = lambda lo, hi: lo + (hi - lo) * torch.rand(rows, length, dtype=torch.float64)  # noqa: E731
    rates = [rand(0.0, 0.5), rand(0.2, 0.8), rand(0.0, 0.3)]
    return model, (weights, momentum, *(t.requires_grad_() for t in (*qkv, *rates)))


def run_update(update, args, chunk: int, **kwargs):
    """Outputs and the gradients of a loss on the reads and both end states, w.r.t. every input."""
    weights, momentum, *tensors = args
    out = update(weights, momentum, *tensors, chunk, **kwargs)
    loss = out.y.pow(2).sum() + sum(w.pow(3).sum() for w in out.weights.values())
    loss = loss + sum(s.pow(2).sum() for s in out.momentum.values())
    inputs = [*weights.values(), *momentum.values(), *tensors]
    return out, torch.autograd.grad(loss, inputs)


def assert_equal(fused, reference, tol: float = 2e-5):
    (out, grads), (ref, ref_grads) = fused, reference
    assert rel_err(out.y, ref.y) < tol
    assert rel_err(out.surprise, ref.surprise) < tol
    for name in ref.weights:
        assert rel_err(out.weights[name], ref.weights[name]) < tol
        assert rel_err(out.momentum[name], ref.momentum[name]) < tol
    names = [f"W{i}" for i in ref.weights] + [f"S{i}" for i in ref.weights] + ["q", "k", "v", "lr", "mom", "forget"]
    errors = {n: rel_err(g, r) for n, g, r in zip(names, grads, ref_grads, strict=True)}
    assert max(errors.values()) < tol, errors
