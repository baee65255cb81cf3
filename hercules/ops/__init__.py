"""Pure tensor functions: the memory update (a naive token loop and the fast chunked form, whose chunk loop runs
as one autograd node for models with a hand-written chunk backward), the built-in memory models' closed-form
chunk steps and activations, and causal convolution.

Nothing here holds parameters; the modules in :mod:`hercules.memory` call these functions.
"""

from hercules.ops.causal_conv import causal_conv1d, causal_conv1d_naive
from hercules.ops.memory_update_chunked import chunk_coefficients, memory_update_chunked
from hercules.ops.memory_update_naive import MemoryUpdate, memory_update_naive

__all__ = [
    "MemoryUpdate",
    "causal_conv1d",
    "causal_conv1d_naive",
    "chunk_coefficients",
    "memory_update_chunked",
    "memory_update_naive",
]
