"""``linear``: a matrix memory ``M(x) = x W`` (the associative memory of linear attention and the delta rule)."""

from __future__ import annotations

from torch import Tensor

from hercules.memory.models.base import MemoryModel, register_memory_model
from hercules.memory.models.configs import LinearMemoryConfig
from hercules.ops.chunk_scan import ChunkKernel
from hercules.ops.mlp_chunk import mlp_chunk_backward, mlp_chunk_forward, mlp_gradient_norms


@register_memory_model("linear", LinearMemoryConfig)
class LinearMemory(MemoryModel):
    """Matrix memory. Initial weight: zeros (an empty memory) or N(0, 1/d).

    Examples:
        >>> import torch
        >>> m = LinearMemory(LinearMemoryConfig(), dim=4, heads=1)
        >>> float(m(torch.randn(1, 2, 4)).abs().sum())
        0.0
    """

    def __init__(self, config: LinearMemoryConfig, dim: int, heads: int) -> None:
        super().__init__(config, dim, heads)
        self.add_weight("w", dim, dim, std=0.0 if config.init == "zeros" else None)

    def functional(self, weights: dict[str, Tensor], x: Tensor) -> Tensor:
        return x @ weights["w"]

    def gradient_norms(self, weights: dict[str, Tensor], k: Tensor, v: Tensor) -> Tensor:
        return mlp_gradient_norms([weights["w"]], k, v, None, residual=False)

    def make_chunk_kernel(self) -> ChunkKernel:
        # a one-layer MLP without residual: ∇_W ‖k W − v‖² = 2 k^T (k W − v)

        def forward(weights, q, k, v, token_weights):
            y, (grads,), saved = mlp_chunk_forward([weights["w"]], q, k, v, token_weights, None, residual=False)
            return y, {"w": grads}, saved

        def backward(weights, q, k, v, token_weights, saved, grad_y, grad_grads):
            (grads,), *rest = mlp_chunk_backward(
                [weights["w"]], q, k, v, token_weights, saved, grad_y, [grad_grads["w"]], None, residual=False
            )
            return {"w": grads}, *rest

        return ChunkKernel(forward, backward)
