"""Hercules: test-time-trainable neural memory (Titans) for pretrained Hugging Face language models."""

from hercules.lazy import lazy_package

# Imported on first use: importing a config module of this package does not import torch.
_EXPORTS = {
    "AugmentConfig": "hercules.injection.config",
    "MemoryConfig": "hercules.memory.config",
    "MemoryState": "hercules.memory.state",
    "NeuralMemory": "hercules.memory.layer",
    "augment": "hercules.injection.augment",
}
lazy_package(__name__, _EXPORTS)

__version__ = "0.1.0"

__all__ = ["AugmentConfig", "MemoryConfig", "MemoryState", "NeuralMemory", "__version__", "augment"]
