"""The memory-model plugin interface and its registry.

A memory model is the small network whose weights are the memory. It owns the *initial* weights (learned
parameters, one set per head, ``[H, ...]``) and a pure function ``functional(weights, x)`` that applies weights
with a leading row dimension ``[N, ...]`` (``N`` = batch × heads) to ``x`` ``[N, n, d]``. The update rule never
writes into the parameters: the per-sample weights live in :class:`hercules.memory.state.MemoryState`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hercules.memory.models.configs import MEMORY_MODELS, register_memory_model  # noqa: F401  (re-exported)
from hercules.ops.chunk_scan import ChunkKernel
from hercules.ops.memory_update_chunked import per_token_gradient_norms, weighted_gradients
from hercules.registry import PluginConfig


class MemoryModel(nn.Module):
    """Base class: subclasses create their initial weights in ``__init__`` and implement :meth:`functional`.

    Args:
        config: the model's plugin config.
        dim: the head size ``d`` (input and output size of the memory).
        heads: number of independent memories ``H``.
    """

    def __init__(self, config: PluginConfig, dim: int, heads: int) -> None:
        super().__init__()
        self.config, self.dim, self.heads = config, dim, heads
        self.initial = nn.ParameterDict()

    def add_weight(self, name: str, fan_in: int, fan_out: int, std: float | None = None) -> None:
        """Add an initial weight ``[H, fan_in, fan_out]`` drawn from N(0, std²), std = 1/√fan_in by default."""
        std = 1 / math.sqrt(fan_in) if std is None else std
        self.initial[name] = nn.Parameter(torch.randn(self.heads, fan_in, fan_out) * std)

    def functional(self, weights: dict[str, Tensor], x: Tensor) -> Tensor:
        """Apply per-row weights ``name → [N, ...]`` to ``x`` ``[N, n, d]`` → ``[N, n, d]``."""
        raise NotImplementedError

    def read_and_gradients(
        self, weights: dict[str, Tensor], q: Tensor, k: Tensor, v: Tensor, token_weights: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Reads ``W(q)`` and weighted gradient sums ``Σ_t w_{m,t} ∇_W ‖W(k_t) − v_t‖²`` of one chunk.

        ``token_weights`` is ``[N, m, n]``; gradients come back as ``name → [N, m, ...]``. By default the forward
        of :meth:`make_chunk_kernel` where the model has one, else any :meth:`functional` through ``torch.func``;
        a subclass may override it with a closed form.
        """
        kernel = self.make_chunk_kernel()
        if kernel is not None:
            y, grads, _ = kernel.forward(weights, q, k, v, token_weights)
            return y, grads
        return self.functional(weights, q), weighted_gradients(self.functional, weights, k, v, token_weights)

    def gradient_norms(self, weights: dict[str, Tensor], k: Tensor, v: Tensor) -> Tensor:
        """``[N, n]``: the norm of each key's gradient ``∇_W ‖W(k_t) − v_t‖²`` over every weight (for the per-token
        gradient clipping, ``MemoryConfig.max_grad_norm``). Any model through ``torch.func`` here; a subclass may
        give a closed form."""
        return per_token_gradient_norms(self.functional, weights, k, v)

    def make_chunk_kernel(self) -> ChunkKernel | None:
        """:meth:`read_and_gradients` with its backward written out, if the model has one (``None`` here)."""
        return None

    @property
    def chunk_kernel(self) -> ChunkKernel | None:
        """The :meth:`make_chunk_kernel` the fast path runs as one autograd node for all of a call's chunks;
        ``None`` where :meth:`read_and_gradients` was replaced on the instance (``MemoryConfig(compile=True)``
        compiles it), so that the chunk loop goes through the replacement."""
        return None if "read_and_gradients" in self.__dict__ else self.make_chunk_kernel()

    def forward(self, x: Tensor) -> Tensor:
        """Apply the initial weights to ``x`` ``[H, n, d]`` (one row per head)."""
        return self.functional(dict(self.initial), x)
