"""``titans``: gradient descent with data-dependent learning rate, momentum ("surprise") and forgetting."""

from __future__ import annotations

from torch import Tensor

from hercules.memory.rules.base import RateProjection, Rates, UpdateRule, register_update_rule
from hercules.memory.rules.configs import TitansRuleConfig


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
