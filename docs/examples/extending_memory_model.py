"""Register a memory model of your own, from outside Hercules, and use it by its kind name."""

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from hercules.memory import MemoryConfig, MemoryModel, NeuralMemory, register_memory_model
from hercules.registry import PluginConfig


class LowRankMemoryConfig(PluginConfig):
    """A residual low-rank memory M(x) = x + x A B."""

    kind: Literal["lowrank"] = "lowrank"
    rank: int = Field(4, ge=1, description="Rank of the update x A B.")


@register_memory_model("lowrank", LowRankMemoryConfig)
class LowRankMemory(MemoryModel):
    """Initial weights: A ~ N(0, 1/d), B = 0, so the memory starts as the identity map."""

    def __init__(self, config: LowRankMemoryConfig, dim: int, heads: int) -> None:
        super().__init__(config, dim, heads)
        self.add_weight("a", dim, config.rank)  # [H, d, r], N(0, 1/d)
        self.add_weight("b", config.rank, dim, std=0.0)  # [H, r, d], zeros

    def functional(self, weights: dict[str, Tensor], x: Tensor) -> Tensor:
        # weights: name → [N, ...] with N = batch × heads; x: [N, n, d]
        return x + x @ weights["a"] @ weights["b"]


# The registered kind is now a valid value wherever a memory model is configured (a recipe's YAML included).
memory = NeuralMemory(dim=32, config=MemoryConfig(model={"kind": "lowrank", "rank": 8}, heads=2, chunk_size=4))
y, state = memory(torch.randn(2, 12, 32))
assert set(state.weights) == {"a", "b"} and state.weights["a"].shape == (2, 2, 16, 8)  # [B, H, d, rank]

# A bad value names the field and the constraint.
try:
    MemoryConfig(model={"kind": "lowrank", "rank": 0})
except ValueError as err:  # pydantic's ValidationError is a ValueError
    assert "rank" in str(err) and "greater than or equal to 1" in str(err)
    print(err)
else:
    raise AssertionError("rank=0 should have been rejected")
