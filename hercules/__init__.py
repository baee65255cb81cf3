"""Hercules: test-time-trainable neural memory (Titans) for pretrained Hugging Face language models."""

from hercules.memory import MemoryConfig, MemoryState, NeuralMemory

__version__ = "0.1.0"

__all__ = ["MemoryConfig", "MemoryState", "NeuralMemory", "__version__"]
