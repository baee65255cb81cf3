"""A retrieval gate of our own. It starts closed: at initialisation, output == base."""

from typing import Literal

import torch
from torch import Tensor, nn

from hercules.memory import Gate, register_gate
from hercules.registry import PluginConfig


class TanhGateConfig(PluginConfig):
    """One learned scalar per channel, squashed by tanh into (-1, 1)."""

    kind: Literal["tanh"] = "tanh"


@register_gate("tanh", TanhGateConfig)
class TanhGate(Gate):
    """``base + tanh(λ) ⊙ memory_out`` with λ ∈ R^D starting at zero."""

    def __init__(self, config: TanhGateConfig, dim: int) -> None:
        super().__init__(config, dim)
        self.scale = nn.Parameter(torch.zeros(dim))

    def value(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.scale).expand_as(hidden)

    def forward(self, base: Tensor, memory_out: Tensor, hidden: Tensor) -> Tensor:
        return base + self.value(hidden) * memory_out
