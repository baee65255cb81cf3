"""``swiglu``: a gated (SwiGLU) MLP memory, ``M(x) = x + W_down (silu(W_gate x) ⊙ W_up x)``."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor
from torch.nn.functional import silu

from hercules.memory.models.base import ACTIVATION_GRADS, MemoryModel, register_memory_model, weighted_outer
from hercules.registry import PluginConfig


class SwiGLUMemoryConfig(PluginConfig):
    """A gated MLP memory, as in the feed-forward blocks of Llama-family models."""

    kind: Literal["swiglu"] = "swiglu"
    expansion: float = Field(2.0, gt=0, description="Hidden width as a multiple of the head size.")
    residual: bool = Field(True, description="Add the input to the output.")


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

    def read_and_gradients(self, weights, q, k, v, token_weights):
        """Closed form: one forward over queries and keys together, then backpropagation by hand."""
        n = q.shape[1]
        x = torch.cat([q, k], dim=1)
        gate, up = x @ weights["gate"], x @ weights["up"]
        act = silu(gate)
        hidden = act * up
        out = torch.baddbmm(x, hidden, weights["down"]) if self.config.residual else hidden @ weights["down"]
        token_weights = 2 * token_weights  # ∂‖out − v‖²/∂out = 2 (out − v), the 2 on the small tensor
        delta = out[:, n:] - v
        d_hidden = delta @ weights["down"].transpose(-1, -2)
        d_gate = ACTIVATION_GRADS["silu"](d_hidden * up[:, n:], gate[:, n:])
        d_up = d_hidden * act[:, n:]
        keys = x[:, n:]
        grads = {
            "down": weighted_outer(hidden[:, n:], token_weights, delta),
            "gate": weighted_outer(keys, token_weights, d_gate),
            "up": weighted_outer(keys, token_weights, d_up),
        }
        return out[:, :n], grads
