"""Injection of neural memories into pretrained decoder layers: strategies (MAL, MAC, MAG) and ``augment``."""

from hercules.injection.augment import (
    augment,
    memory_disabled,
    memory_layers,
    memory_parameters,
    set_memory_enabled,
)
from hercules.injection.base import MemoryLayer
from hercules.injection.config import AugmentConfig, LayerOverride
from hercules.injection.registry import INJECTIONS, InjectionConfig, register_injection
from hercules.injection.state import MemoryStates, RowStates, attach_states, cache_states
from hercules.injection.strategies import MAC, MAG, MAL, MACConfig, MAGConfig, MALConfig

__all__ = [
    "INJECTIONS", "MAC", "MAG", "MAL", "AugmentConfig", "InjectionConfig", "LayerOverride", "MACConfig",
    "MAGConfig", "MALConfig", "MemoryLayer", "MemoryStates", "RowStates", "attach_states", "augment",
    "cache_states", "memory_disabled", "memory_layers", "memory_parameters", "register_injection",
    "set_memory_enabled",
]
