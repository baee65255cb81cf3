"""``titans``: gradient descent with data-dependent learning rate, momentum ("surprise") and forgetting."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from torch import Tensor

from hercules.memory.rules.base import RateProjection, Rates, UpdateRule, register_update_rule
from hercules.registry import PluginConfig


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


@register_update_rule("titans", TitansRuleConfig)
class TitansRule(UpdateRule):
    """The Titans rule. Each rate has its own linear projection ``D → H`` followed by a sigmoid.

    Examples:
        >>> import torch
        >>> rule = TitansRule(TitansRuleConfig(forgetting=False), dim=8, heads=2)
        >>> float(rule.rates(torch.randn(1, 3, 8)).forget.abs().sum())
        0.0
    """

    def __init__(self, config: TitansRuleConfig, dim: int, heads: int) -> None:
        super().__init__(config, dim, heads)
        self.lr = RateProjection(dim, heads, config.init_lr, scale=config.max_lr)
        self.mom = None
        if config.momentum:
            self.mom = RateProjection(dim, heads, config.init_momentum / config.max_momentum, config.max_momentum)
        self.forget = RateProjection(dim, heads, config.init_forget) if config.forgetting else None

    def rates(self, x: Tensor) -> Rates:
        lr = self.lr(x)
        mom = self.mom(x) if self.mom is not None else lr.new_zeros(lr.shape)
        forget = self.forget(x) if self.forget is not None else lr.new_zeros(lr.shape)
        return Rates(lr, mom, forget)
