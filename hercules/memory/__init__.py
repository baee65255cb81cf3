"""The neural memory: a small network trained online while tokens stream in (Titans).

Public names: :class:`NeuralMemory` (the layer), :class:`MemoryConfig`, :class:`MemoryState` with
:func:`save_state` / :func:`load_state` (a state records its layer's :class:`StateSignature`; a mismatch raises
:class:`StateMismatchError`), and the plugin registries ``MEMORY_MODELS``, ``UPDATE_RULES`` and
``GATES`` with their built-in components.
"""

from hercules.memory.config import MemoryConfig
from hercules.memory.gates import GATES, Gate, build_gate, register_gate
from hercules.memory.layer import NeuralMemory
from hercules.memory.models import MEMORY_MODELS, MemoryModel, register_memory_model
from hercules.memory.rules import UPDATE_RULES, Rates, UpdateRule, register_update_rule
from hercules.memory.signature import StateMismatchError, StateSignature
from hercules.memory.state import MemoryState, load_state, save_state

__all__ = [
    "GATES",
    "MEMORY_MODELS",
    "UPDATE_RULES",
    "Gate",
    "MemoryConfig",
    "MemoryModel",
    "MemoryState",
    "NeuralMemory",
    "Rates",
    "StateMismatchError",
    "StateSignature",
    "UpdateRule",
    "build_gate",
    "load_state",
    "register_gate",
    "register_memory_model",
    "register_update_rule",
    "save_state",
]
