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
