"""An update rule of our own: the Titans update with fixed rather than learned rates."""

from typing import Literal

from pydantic import Field
from torch import Tensor

from hercules.memory import Rates, UpdateRule, register_update_rule
from hercules.registry import PluginConfig


class FixedRatesConfig(PluginConfig):
    """Constant θ, η, α for every token and head."""

    kind: Literal["fixed"] = "fixed"
    lr: float = Field(1e-2, gt=0, description="θ, the inner learning rate.")
    momentum: float = Field(0.9, ge=0, lt=1, description="η.")
    forget: float = Field(0.0, ge=0, le=1, description="α.")


@register_update_rule("fixed", FixedRatesConfig)
class FixedRates(UpdateRule):
    """``rates`` gives θ, η, α ``[B, T, H]``; the inherited ``update`` applies the chunked Titans update."""

    def rates(self, x: Tensor) -> Rates:
        shape = (*x.shape[:2], self.heads)
        c = self.config
        return Rates(x.new_full(shape, c.lr), x.new_full(shape, c.momentum), x.new_full(shape, c.forget))
