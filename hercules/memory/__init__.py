"""The neural memory: a small network trained online while tokens stream in (Titans).

Public names: :class:`NeuralMemory` (the layer), :class:`MemoryConfig`, :class:`MemoryState` with
:func:`save_state` / :func:`load_state` (a state records its layer's :class:`StateSignature`; a mismatch raises
:class:`StateMismatchError`), and the plugin registries ``MEMORY_MODELS``, ``UPDATE_RULES`` and
``GATES`` with their built-in components.
"""

from hercules.lazy import lazy_package

# Imported on first use: importing a config module of this package does not import torch.
_EXPORTS = {
    "GATES": "hercules.memory.gate_configs",
    "Gate": "hercules.memory.gates",
    "MEMORY_MODELS": "hercules.memory.models.configs",
    "MemoryConfig": "hercules.memory.config",
    "MemoryModel": "hercules.memory.models",
    "MemoryState": "hercules.memory.state",
    "NeuralMemory": "hercules.memory.layer",
    "Rates": "hercules.memory.rules",
    "UPDATE_RULES": "hercules.memory.rules.configs",
    "UpdateRule": "hercules.memory.rules",
    "build_gate": "hercules.memory.gates",
    "load_state": "hercules.memory.state",
    "register_gate": "hercules.memory.gate_configs",
    "register_memory_model": "hercules.memory.models.configs",
    "register_update_rule": "hercules.memory.rules.configs",
    "save_state": "hercules.memory.state",
    "StateMismatchError": "hercules.memory.signature",
    "StateSignature": "hercules.memory.signature",
}
lazy_package(__name__, _EXPORTS)

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
