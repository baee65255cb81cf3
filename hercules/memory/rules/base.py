"""The update-rule plugin interface and its registry.

An update rule turns the hidden states into the per-token, per-head rates θ (learning rate), η (momentum) and
α (forgetting) and applies the memory update through the ops in :mod:`hercules.ops`. A rule that needs a
different update writes its own :meth:`UpdateRule.update`; the built-ins share the Titans update, of which the
delta rule is the case η = α = 0.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from hercules.memory.backend import triton_update
from hercules.memory.models.base import MemoryModel
from hercules.memory.rules.configs import UPDATE_RULES, register_update_rule  # noqa: F401  (re-exported)
from hercules.ops import MemoryUpdate, memory_update_chunked, memory_update_naive
from hercules.registry import PluginConfig


class Rates(NamedTuple):
    """θ, η, α per token and head, each ``[B, T, H]``."""

    lr: Tensor
    mom: Tensor
    forget: Tensor


def logit(p: float) -> float:
    return math.log(p / (1 - p))


class RateProjection(nn.Linear):
    """``x [B, T, D] → scale · σ(x W + b)`` ``[B, T, H]``; small weights so that rates start near ``init``."""

    def __init__(self, dim: int, heads: int, init: float, scale: float = 1.0) -> None:
        super().__init__(dim, heads)
        self.scale = scale
        nn.init.normal_(self.weight, std=0.02)
        nn.init.constant_(self.bias, logit(init))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * torch.sigmoid(super().forward(x))


class UpdateRule(nn.Module):
    """Base class. Args: config, model dim ``D``, heads ``H``."""

    def __init__(self, config: PluginConfig, dim: int, heads: int) -> None:
        super().__init__()
        self.config, self.dim, self.heads = config, dim, heads

    def rates(self, x: Tensor) -> Rates:
        """Rates for hidden states ``x`` ``[B, T, D]``."""
        raise NotImplementedError

    def update(
        self,
        model: MemoryModel,
        weights: dict[str, Tensor],
        momentum: dict[str, Tensor],
        q: Tensor,
        k: Tensor,
        v: Tensor,
        rates: Rates,
        chunk_size: int,
        naive: bool = False,
        read_from: int = 0,
        max_grad_norm: float | None = None,
        backend: str = "torch",
    ) -> MemoryUpdate:
        """Run the update over ``[N, L, ...]`` rows (rates already flattened to ``[N, L]``); tokens before
        ``read_from`` (pending from an earlier call, and read by it) are written but not read again; each token's
        gradient is clipped to ``max_grad_norm`` (``MemoryConfig.max_grad_norm``). ``backend``
        (``MemoryConfig.backend``) may route the fast path to the Triton kernels (:mod:`hercules.memory.backend`)."""
        args = (model.functional, weights, momentum, q, k, v, rates.lr, rates.mom, rates.forget, chunk_size)
        if naive:
            return memory_update_naive(*args, read_from=read_from, max_grad_norm=max_grad_norm)
        fused = triton_update(backend, model, *args[1:], read_from=read_from, max_grad_norm=max_grad_norm)
        if fused is not None:
            return fused
        return memory_update_chunked(
            *args, read_from=read_from, read_and_gradients=model.read_and_gradients,
            chunk_kernel=model.chunk_kernel, max_grad_norm=max_grad_norm, gradient_norms=model.gradient_norms,
        )
