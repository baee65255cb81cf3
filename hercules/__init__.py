"""Hercules: test-time-trainable neural memory (Titans) for pretrained Hugging Face language models."""

from hercules.injection import AugmentConfig, augment
from hercules.memory import MemoryConfig, MemoryState, NeuralMemory

__version__ = "0.1.0"

__all__ = ["AugmentConfig", "MemoryConfig", "MemoryState", "NeuralMemory", "__version__", "augment"]
