"""``swiglu``: a gated (SwiGLU) MLP memory, ``M(x) = x + W_down (silu(W_gate x) ⊙ W_up x)``."""

from __future__ import annotations

from torch import Tensor
from torch.nn.functional import silu

from hercules.memory.models.base import MemoryModel, register_memory_model
from hercules.memory.models.configs import SwiGLUMemoryConfig
from hercules.ops.chunk_scan import ChunkKernel
from hercules.ops.swiglu_chunk import swiglu_chunk_backward, swiglu_chunk_forward, swiglu_gradient_norms


@register_memory_model("swiglu", SwiGLUMemoryConfig)
class SwiGLUMemory(MemoryModel):
    """Gated MLP memory. Initial weights: N(0, 1/fan_in) for gate, up and down matrices.

    Examples:
        >>> import torch
        >>> m = SwiGLUMemory(SwiGLUMemoryConfig(), dim=8, heads=1)
        >>> m(torch.randn(1, 3, 8)).shape
        torch.Size([1, 3, 8])
    """

    def __init__(self, config: SwiGLUMemoryConfig, dim: int, heads: int) -> None:
        super().__init__(config, dim, heads)
        hidden = max(1, round(dim * config.expansion))
        self.add_weight("gate", dim, hidden)
        self.add_weight("up", dim, hidden)
        self.add_weight("down", hidden, dim)

    def functional(self, weights: dict[str, Tensor], x: Tensor) -> Tensor:
        h = (silu(x @ weights["gate"]) * (x @ weights["up"])) @ weights["down"]
        return x + h if self.config.residual else h

    def gradient_norms(self, weights: dict[str, Tensor], k: Tensor, v: Tensor) -> Tensor:
        return swiglu_gradient_norms(weights, k, v, self.config.residual)

    def make_chunk_kernel(self) -> ChunkKernel:
        residual = self.config.residual
        return ChunkKernel(
            lambda *args: swiglu_chunk_forward(*args, residual),
            lambda *args: swiglu_chunk_backward(*args, residual),
        )
