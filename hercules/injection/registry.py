"""The injection-strategy registry (MAL, MAC, MAG and any third-party strategy) and their common config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hercules.memory.gate_configs import GATES, SigmoidGateConfig
from hercules.registry import PluginConfig, Registry

INJECTIONS: Registry[type] = Registry("injection strategy")
register_injection = INJECTIONS.register


class InjectionConfig(PluginConfig):
    """Fields every injection strategy has: the retrieval gate that mixes the memory in."""

    gate: GATES.field_type() = Field(  # type: ignore[valid-type]
        default_factory=SigmoidGateConfig,
        description="Retrieval gate mixing the memory output in (sigmoid | scalar | none); starts closed.",
    )
    require_identity: bool = Field(
        True,
        description="Refuse a gate that does not start closed unless the memory's output starts at zero, so that "
        "an augmented pretrained model equals its backbone at init. False for a model trained from scratch, where a "
        "memory that contributes from the first step (gate: none) gives its projections gradient at once.",
    )
    memory_init: Literal["random", "attention"] = Field(
        "random",
        description="random: the memory's projections start random. attention: its query, key and value projections "
        "start as the layer's attention's (one memory head per query head, with that head's key/value group) and its "
        "output projection as the attention's, so that it starts as a linear-attention copy of the layer's own "
        "attention over everything it has read (needs memory.heads = the attention's heads, memory.dim_head = its "
        "head size and a closed gate).",
    )
