"""Update rules; the built-ins are declared in configs.py and their classes imported on first use."""

from hercules.lazy import lazy_package

# Imported on first use: importing a config module of this package does not import torch.
_EXPORTS = {
    "DeltaRule": "hercules.memory.rules.delta",
    "DeltaRuleConfig": "hercules.memory.rules.configs",
    "Rates": "hercules.memory.rules.base",
    "TitansRule": "hercules.memory.rules.titans",
    "TitansRuleConfig": "hercules.memory.rules.configs",
    "UPDATE_RULES": "hercules.memory.rules.configs",
    "UpdateRule": "hercules.memory.rules.base",
    "register_update_rule": "hercules.memory.rules.configs",
}
lazy_package(__name__, _EXPORTS)

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
