"""``mlp``: a residual multi-layer perceptron memory, ``M(x) = x + W_L σ(… σ(W_1 x))``."""

from __future__ import annotations

from torch import Tensor

from hercules.memory.models.base import MemoryModel, register_memory_model
from hercules.memory.models.configs import MLPMemoryConfig
from hercules.ops.activations import ACTIVATION_GRADS, ACTIVATION_SECONDS, ACTIVATIONS
from hercules.ops.chunk_scan import ChunkKernel
from hercules.ops.mlp_chunk import Activation, mlp_chunk_backward, mlp_chunk_forward, mlp_gradient_norms


@register_memory_model("mlp", MLPMemoryConfig)
class MLPMemory(MemoryModel):
    """Residual MLP memory. Initial weights: N(0, 1/fan_in) per matrix (variance-preserving).

    Examples:
        >>> import torch
        >>> m = MLPMemory(MLPMemoryConfig(depth=2), dim=8, heads=2)
        >>> m(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, config: MLPMemoryConfig, dim: int, heads: int) -> None:
        super().__init__(config, dim, heads)
        hidden = max(1, round(dim * config.expansion))
        sizes = [dim] + [hidden] * (config.depth - 1) + [dim]
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            self.add_weight(f"w{i}", fan_in, fan_out)
        self.act = ACTIVATIONS[config.activation]
        activation = Activation(self.act, ACTIVATION_GRADS[config.activation], ACTIVATION_SECONDS[config.activation])
        self._kernel_args = (activation, config.residual)

    def functional(self, weights: dict[str, Tensor], x: Tensor) -> Tensor:
        h = x
        for i in range(self.config.depth):
            if i > 0:
                h = self.act(h)
            h = h @ weights[f"w{i}"]
        return x + h if self.config.residual else h

    def make_chunk_kernel(self) -> ChunkKernel:
        return ChunkKernel(self.chunk_forward, self.chunk_backward)

    def gradient_norms(self, weights: dict[str, Tensor], k: Tensor, v: Tensor) -> Tensor:
        return mlp_gradient_norms(self._ordered(weights), k, v, *self._kernel_args)

    def chunk_forward(self, weights, q, k, v, token_weights):
        """:func:`~hercules.ops.mlp_chunk.mlp_chunk_forward` with this model's weights by name."""
        y, grads, saved = mlp_chunk_forward(self._ordered(weights), q, k, v, token_weights, *self._kernel_args)
        return y, {f"w{i}": g for i, g in enumerate(grads)}, saved

    def chunk_backward(self, weights, q, k, v, token_weights, saved, grad_y, grad_grads):
        """:func:`~hercules.ops.mlp_chunk.mlp_chunk_backward` with this model's weights by name."""
        grads, *rest = mlp_chunk_backward(
            self._ordered(weights), q, k, v, token_weights, saved, grad_y, self._ordered(grad_grads), *self._kernel_args
        )
        return {f"w{i}": g for i, g in enumerate(grads)}, *rest

    def _ordered(self, named: dict[str, Tensor]) -> list[Tensor]:
        return [named[f"w{i}"] for i in range(self.config.depth)]
