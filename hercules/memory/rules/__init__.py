"""Update rules; importing this package registers the built-ins."""

from hercules.memory.rules.base import UPDATE_RULES, Rates, UpdateRule, register_update_rule
from hercules.memory.rules.delta import DeltaRule, DeltaRuleConfig
from hercules.memory.rules.titans import TitansRule, TitansRuleConfig

__all__ = [
    "UPDATE_RULES",
    "DeltaRule",
    "DeltaRuleConfig",
    "Rates",
    "TitansRule",
    "TitansRuleConfig",
    "UpdateRule",
    "register_update_rule",
]
