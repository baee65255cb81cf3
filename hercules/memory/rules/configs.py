"""The update-rule registry and the built-in rules' configs (no torch: recipes validate without it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hercules.registry import PluginConfig, Registry

UPDATE_RULES: Registry[type] = Registry("update rule")
register_update_rule = UPDATE_RULES.register


class TitansRuleConfig(PluginConfig):
    """``S_t = η_t S_{t−1} − θ_t ∇ℓ``, ``M_t = (1 − α_t) M_{t−1} + S_t``, with per-head rates from the input."""

    kind: Literal["titans"] = "titans"
    max_lr: float = Field(1e-2, gt=0, description="θ_t = max_lr · σ(·): the largest inner learning rate.")
    momentum: bool = Field(True, description="Learn η_t; off means η = 0 (no momentum).")
    forgetting: bool = Field(True, description="Learn α_t; off means α = 0 (no forgetting).")
    init_lr: float = Field(0.5, gt=0, lt=1, description="θ at initialisation, as a fraction of max_lr.")
    max_momentum: float = Field(
        0.99, gt=0, le=1, description="η_t = max_momentum · σ(·): below 1, the momentum decays whatever the input "
        "(at η = 1 it integrates every gradient forever, and the weights grow without bound)."
    )
    init_momentum: float = Field(0.9, gt=0, lt=1, description="η at initialisation (below max_momentum).")
    init_forget: float = Field(0.01, gt=0, lt=1, description="α at initialisation.")

    @model_validator(mode="after")
    def _init_below_max(self) -> TitansRuleConfig:
        if self.momentum and self.init_momentum >= self.max_momentum:
            raise ValueError(f"init_momentum={self.init_momentum} must be below max_momentum={self.max_momentum}")
        return self


class DeltaRuleConfig(PluginConfig):
    """No momentum, no forgetting; a data-dependent learning rate per head."""

    kind: Literal["delta"] = "delta"
    max_lr: float = Field(1e-2, gt=0, description="θ_t = max_lr · σ(·).")
    init_lr: float = Field(0.5, gt=0, lt=1, description="θ at initialisation, as a fraction of max_lr.")


UPDATE_RULES.declare("titans", TitansRuleConfig, "hercules.memory.rules.titans")
UPDATE_RULES.declare("delta", DeltaRuleConfig, "hercules.memory.rules.delta")
