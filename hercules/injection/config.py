"""``AugmentConfig``: which memory, which injection strategy, in which decoder layers (with per-layer overrides)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hercules.injection.registry import INJECTIONS
from hercules.injection.strategy_configs import MACConfig  # declares mal, mac, mag
from hercules.memory.config import MemoryConfig

InjectionField = INJECTIONS.field_type()


class LayerOverride(BaseModel):
    """Settings of one augmented layer that differ from the model-wide ones (fields left out are inherited)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    memory: MemoryConfig | None = Field(None, description="This layer's memory config (replaces the global one).")
    injection: InjectionField | None = Field(  # type: ignore[valid-type]
        None, description="This layer's injection strategy config (replaces the global one)."
    )


class AugmentConfig(BaseModel):
    """How :func:`hercules.augment` adds memory to a backbone.

    Examples:
        >>> cfg = AugmentConfig(injection={"kind": "mag", "gate": "scalar"}, layers=[2, -1],
        ...                     overrides={-1: {"injection": {"kind": "mal"}}})
        >>> cfg.injection.kind, cfg.injection.gate.kind, cfg.overrides[-1].injection.kind
        ('mag', 'scalar', 'mal')
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    memory: MemoryConfig = Field(default_factory=MemoryConfig, description="The neural memory of each layer.")
    injection: InjectionField = Field(  # type: ignore[valid-type]
        default_factory=MACConfig, description="Injection strategy (mal | mac | mag) and its retrieval gate."
    )
    layers: list[int] | Literal["all"] = Field(
        default_factory=lambda: [-1],
        description="Decoder layers that get a memory: indices (negative count from the end) or 'all'.",
    )
    overrides: dict[int, LayerOverride] = Field(
        default_factory=dict, description="Per-layer settings by layer index (negative allowed)."
    )
    segment_length: int | None = Field(
        None, ge=1, description="Read inputs longer than this in segments, carrying only the memory between them; "
        "also the BABILong evaluation's segment length when evaluation.segment_length is unset.",
    )

    @field_validator("layers")
    @classmethod
    def _non_empty(cls, value: list[int] | str) -> list[int] | str:
        if isinstance(value, list) and not value:
            raise ValueError("layers is empty; give layer indices such as [-1] or 'all'")
        return value

    def resolve_layers(self, num_layers: int) -> list[int]:
        """The selected layer indices in ``[0, num_layers)``, sorted; out-of-range indices are errors."""
        if self.layers == "all":
            return list(range(num_layers))
        return sorted({_resolve(i, num_layers, "layers") for i in self.layers})

    def layer_settings(self, num_layers: int) -> dict[int, tuple[MemoryConfig, BaseModel]]:
        """``{layer index: (memory config, injection config)}`` with the overrides applied."""
        selected = self.resolve_layers(num_layers)
        settings = {i: (self.memory, self.injection) for i in selected}
        for key, override in self.overrides.items():
            index = _resolve(key, num_layers, "overrides")
            if index not in settings:
                raise ValueError(f"overrides[{key}]: layer {index} is not among the selected layers {selected}")
            memory, injection = settings[index]
            settings[index] = (override.memory or memory, override.injection or injection)
        return settings


def _resolve(index: int, num_layers: int, field: str) -> int:
    resolved = index + num_layers if index < 0 else index
    if not 0 <= resolved < num_layers:
        raise ValueError(f"{field}: layer {index} is out of range for a model with {num_layers} decoder layers")
    return resolved
