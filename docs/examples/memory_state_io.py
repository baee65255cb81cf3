"""A memory state is a value: select rows (beams), move it, save and load it with safetensors."""

import tempfile
from pathlib import Path

import torch

from hercules.memory import MemoryConfig, NeuralMemory, load_state, save_state

memory = NeuralMemory(dim=16, config=MemoryConfig(heads=2, chunk_size=4))
x = torch.randn(3, 9, 16)
_, state = memory(x)

# Keep samples 2 and 0, in that order (as beam search reorders its beams).
picked = state.index_select(torch.tensor([2, 0]))
assert picked.batch_size == 2

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "memory.safetensors"
    save_state(picked, path)
    restored = load_state(path)

# The restored state continues exactly like the original.
more = torch.randn(2, 5, 16)
y_a, _ = memory(more, state=picked)
y_b, _ = memory(more, state=restored.to("cpu"))
torch.testing.assert_close(y_a, y_b)
