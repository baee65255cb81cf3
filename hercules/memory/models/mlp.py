"""``mlp``: a residual multi-layer perceptron memory, ``M(x) = x + W_L σ(… σ(W_1 x))``."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from hercules.memory.models.base import (
    ACTIVATION_GRADS,
    ACTIVATIONS,
    MemoryModel,
    register_memory_model,
    weighted_outer,
)
from hercules.registry import PluginConfig


class MLPMemoryConfig(PluginConfig):
    """A residual MLP memory (the Titans default)."""

    kind: Literal["mlp"] = "mlp"
    depth: int = Field(2, ge=1, description="Number of weight matrices; 1 is a residual linear map.")
    expansion: float = Field(2.0, gt=0, description="Hidden width as a multiple of the head size.")
    activation: Literal["gelu", "silu", "relu", "tanh"] = Field("gelu", description="Hidden nonlinearity.")
    residual: bool = Field(True, description="Add the input to the output (M(x) = x + MLP(x)).")


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
        self.act_grad = ACTIVATION_GRADS[config.activation]

    def functional(self, weights: dict[str, Tensor], x: Tensor) -> Tensor:
        h = x
        for i in range(self.config.depth):
            if i > 0:
                h = self.act(h)
            h = h @ weights[f"w{i}"]
        return x + h if self.config.residual else h

    def read_and_gradients(self, weights, q, k, v, token_weights):
        """Closed form: one forward over queries and keys together, then backpropagation by hand."""
        n, depth = q.shape[1], self.config.depth
        x = torch.cat([q, k], dim=1)
        inputs, pre = [], []  # per layer: its input and its pre-activation
        h = x
        for i in range(depth):
            if i > 0:
                pre.append(h)
                h = self.act(h)
            inputs.append(h[:, n:])
            residual = self.config.residual and i == depth - 1
            h = torch.baddbmm(x, h, weights[f"w{i}"]) if residual else h @ weights[f"w{i}"]
        # ∂‖out − v‖²/∂out = 2 (out − v): the 2 goes on the [N, m, n] token weights, not on a [N, n, d] tensor
        token_weights = 2 * token_weights
        delta = h[:, n:] - v
        grads = {}
        for i in reversed(range(depth)):
            grads[f"w{i}"] = weighted_outer(inputs[i], token_weights, delta)
            if i > 0:
                delta = self.act_grad(delta @ weights[f"w{i}"].transpose(-1, -2), pre[i - 1][:, n:])
        return h[:, :n], grads
