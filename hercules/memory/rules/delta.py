"""``delta``: plain online gradient descent on the memory (the delta rule / TTT family): ``M_t = M_{t−1} − θ_t ∇ℓ``."""

from __future__ import annotations

from torch import Tensor

from hercules.memory.rules.base import RateProjection, Rates, UpdateRule, register_update_rule
from hercules.memory.rules.configs import DeltaRuleConfig


@register_update_rule("delta", DeltaRuleConfig)
class DeltaRule(UpdateRule):
    """The delta rule: with a linear memory, ``W ← W − 2θ k^T (k W − v)``.

    Examples:
        >>> import torch
        >>> rule = DeltaRule(DeltaRuleConfig(), dim=8, heads=1)
        >>> float(rule.rates(torch.randn(1, 3, 8)).mom.abs().sum())
        0.0
    """

    def __init__(self, config: DeltaRuleConfig, dim: int, heads: int) -> None:
        super().__init__(config, dim, heads)
        self.lr = RateProjection(dim, heads, config.init_lr, scale=config.max_lr)

    def rates(self, x: Tensor) -> Rates:
        lr = self.lr(x)
        zeros = lr.new_zeros(lr.shape)
        return Rates(lr, zeros, zeros)
