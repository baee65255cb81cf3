"""The injection-strategy registry (MAL, MAC, MAG and any third-party strategy) and their common config."""

from __future__ import annotations

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
