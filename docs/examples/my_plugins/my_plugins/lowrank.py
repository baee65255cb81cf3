"""A memory model of our own: a residual low-rank memory. Importing this module registers it."""

from typing import Literal

from pydantic import Field
from torch import Tensor

from hercules.memory import MemoryModel, register_memory_model
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
