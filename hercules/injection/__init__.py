"""Injection of neural memories into pretrained decoder layers: strategies (MAL, MAC, MAG) and ``augment``."""

from hercules.lazy import lazy_package

# Imported on first use: importing a config module of this package does not import torch.
_EXPORTS = {
    "AugmentConfig": "hercules.injection.config",
    "INJECTIONS": "hercules.injection.registry",
    "InjectionConfig": "hercules.injection.registry",
    "LayerOverride": "hercules.injection.config",
    "MAC": "hercules.injection.strategies",
    "MACConfig": "hercules.injection.strategy_configs",
    "MAG": "hercules.injection.strategies",
    "MAGConfig": "hercules.injection.strategy_configs",
    "MAL": "hercules.injection.strategies",
    "MALConfig": "hercules.injection.strategy_configs",
    "MemoryLayer": "hercules.injection.base",
    "MemoryStates": "hercules.injection.state",
    "RowStates": "hercules.injection.state",
    "attach_states": "hercules.injection.state",
    "augment": "hercules.injection.augment",
    "cache_states": "hercules.injection.state",
    "memory_disabled": "hercules.injection.augment",
    "memory_layers": "hercules.injection.augment",
    "memory_parameters": "hercules.injection.augment",
    "register_injection": "hercules.injection.registry",
    "set_memory_enabled": "hercules.injection.augment",
}
lazy_package(__name__, _EXPORTS)

__all__ = [
    "INJECTIONS", "MAC", "MAG", "MAL", "AugmentConfig", "InjectionConfig", "LayerOverride", "MACConfig",
    "MAGConfig", "MALConfig", "MemoryLayer", "MemoryStates", "RowStates", "attach_states", "augment",
    "cache_states", "memory_disabled", "memory_layers", "memory_parameters", "register_injection",
    "set_memory_enabled",
]
