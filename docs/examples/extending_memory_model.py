"""Use a memory model from a package of your own (docs/examples/my_plugins) by its kind name."""

import my_plugins  # noqa: F401 - importing the package registers its plugins
import torch

from hercules.memory import MemoryConfig, NeuralMemory

# The registered kind is now a valid value wherever a memory model is configured (a recipe's YAML included).
memory = NeuralMemory(dim=32, config=MemoryConfig(model={"kind": "lowrank", "rank": 8}, heads=2, chunk_size=4))
y, state = memory(torch.randn(2, 12, 32))
assert set(state.weights) == {"a", "b"} and state.weights["a"].shape == (2, 2, 16, 8)  # [B, H, d, rank]

# A bad value names the field and the constraint.
try:
    MemoryConfig(model={"kind": "lowrank", "rank": 0})
except ValueError as err:  # pydantic's ValidationError is a ValueError
    assert "rank" in str(err) and "greater than or equal to 1" in str(err)
    print(err)
else:
    raise AssertionError("rank=0 should have been rejected")
