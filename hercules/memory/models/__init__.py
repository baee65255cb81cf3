"""Memory models (the networks whose weights are the memory); the built-ins are declared in configs.py."""

from hercules.lazy import lazy_package

# Imported on first use: importing a config module of this package does not import torch.
_EXPORTS = {
    "LinearMemory": "hercules.memory.models.linear",
    "LinearMemoryConfig": "hercules.memory.models.configs",
    "MEMORY_MODELS": "hercules.memory.models.configs",
    "MLPMemory": "hercules.memory.models.mlp",
    "MLPMemoryConfig": "hercules.memory.models.configs",
    "MemoryModel": "hercules.memory.models.base",
    "SwiGLUMemory": "hercules.memory.models.swiglu",
    "SwiGLUMemoryConfig": "hercules.memory.models.configs",
    "register_memory_model": "hercules.memory.models.configs",
}
lazy_package(__name__, _EXPORTS)

__all__ = [
    "MEMORY_MODELS",
    "LinearMemory",
    "LinearMemoryConfig",
    "MLPMemory",
    "MLPMemoryConfig",
    "MemoryModel",
    "SwiGLUMemory",
    "SwiGLUMemoryConfig",
    "register_memory_model",
]
