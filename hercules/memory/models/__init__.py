"""Memory models (the networks whose weights are the memory); importing this package registers the built-ins."""

from hercules.memory.models.base import MEMORY_MODELS, MemoryModel, register_memory_model
from hercules.memory.models.linear import LinearMemory, LinearMemoryConfig
from hercules.memory.models.mlp import MLPMemory, MLPMemoryConfig
from hercules.memory.models.swiglu import SwiGLUMemory, SwiGLUMemoryConfig

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
