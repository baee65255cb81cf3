"""Retrieval gates: how a memory's output is mixed into a base output.

A gate maps ``(base, memory_out, hidden)`` — each ``[B, T, D]`` — to ``base + g ⊙ memory_out``. The gated ones
start with ``g = 0`` exactly, so an augmented model is its backbone, bit for bit, until training moves them.
``zero_at_init`` says whether a gate guarantees that on its own.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hercules.memory.gate_configs import (
    GATES,
    NoGateConfig,
    ScalarGateConfig,
    SigmoidGateConfig,
    register_gate,
)
from hercules.registry import PluginConfig, build


class Gate(nn.Module):
    """Base class. Args: config, model dim ``D``."""

    zero_at_init: bool = True

    def __init__(self, config: PluginConfig, dim: int) -> None:
        super().__init__()
        self.config, self.dim = config, dim

    def forward(self, base: Tensor, memory_out: Tensor, hidden: Tensor) -> Tensor:
        raise NotImplementedError

    def value(self, hidden: Tensor) -> Tensor:
        """The gate ``g`` for ``hidden`` (broadcastable to ``[B, T, D]``), for diagnostics."""
        raise NotImplementedError


@register_gate("sigmoid", SigmoidGateConfig)
class SigmoidGate(Gate):
    """``g = λ ⊙ σ(hidden W + b)``, per channel; the scale λ ∈ R^D starts at zero (a LayerScale).

    Examples:
        >>> import torch
        >>> gate = SigmoidGate(SigmoidGateConfig(), dim=4)
        >>> base = torch.randn(1, 2, 4)
        >>> torch.equal(gate(base, torch.randn(1, 2, 4), torch.randn(1, 2, 4)), base)
        True
    """

    def __init__(self, config: SigmoidGateConfig, dim: int) -> None:
        super().__init__(config, dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.normal_(self.proj.weight, std=0.02)
        nn.init.constant_(self.proj.bias, config.bias)
        self.scale = nn.Parameter(torch.zeros(dim))

    def value(self, hidden: Tensor) -> Tensor:
        return self.scale * torch.sigmoid(self.proj(hidden))

    def forward(self, base: Tensor, memory_out: Tensor, hidden: Tensor) -> Tensor:
        return base + self.value(hidden) * memory_out


@register_gate("scalar", ScalarGateConfig)
class ScalarGate(Gate):
    """``g = λ``, a single learned scalar starting at zero."""

    def __init__(self, config: ScalarGateConfig, dim: int) -> None:
        super().__init__(config, dim)
        self.scale = nn.Parameter(torch.zeros(()))

    def value(self, hidden: Tensor) -> Tensor:
        return self.scale.expand(hidden.shape[:-1] + (1,))

    def forward(self, base: Tensor, memory_out: Tensor, hidden: Tensor) -> Tensor:
        return base + self.scale * memory_out


@register_gate("none", NoGateConfig)
class NoGate(Gate):
    """``g = 1``. The memory contributes from the start: identity at initialisation then needs a memory whose
    output starts at zero (``MemoryConfig(zero_init_output=True)``)."""

    zero_at_init = False

    def value(self, hidden: Tensor) -> Tensor:
        return hidden.new_ones(hidden.shape[:-1] + (1,))

    def forward(self, base: Tensor, memory_out: Tensor, hidden: Tensor) -> Tensor:
        return base + memory_out


GateConfig = GATES.field_type()


def build_gate(config: PluginConfig | dict | str, dim: int) -> Gate:
    """Build the gate that ``config`` names (a config, a mapping with ``kind`` or a bare kind)."""
    return build(GATES, GATES.parse(config), dim)
