"""Hercules plugins of our own: importing the package registers a memory model, an update rule, a retrieval gate
and an injection strategy, which recipes and configs then name by their kind like the built-ins."""

from my_plugins.after_attention import MemoryAfterAttention, MemoryAfterAttentionConfig
from my_plugins.fixed_rates import FixedRates, FixedRatesConfig
from my_plugins.lowrank import LowRankMemory, LowRankMemoryConfig
from my_plugins.tanh_gate import TanhGate, TanhGateConfig

__all__ = [
    "FixedRates",
    "FixedRatesConfig",
    "LowRankMemory",
    "LowRankMemoryConfig",
    "MemoryAfterAttention",
    "MemoryAfterAttentionConfig",
    "TanhGate",
    "TanhGateConfig",
]
