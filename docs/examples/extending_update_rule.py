"""Use an update rule from a package of your own (docs/examples/my_plugins)."""

import my_plugins  # noqa: F401 - importing the package registers its plugins
import torch

from hercules.memory import MemoryConfig, NeuralMemory

memory = NeuralMemory(dim=16, config=MemoryConfig(rule={"kind": "fixed", "lr": 0.05}, chunk_size=4))
_, state = memory(torch.randn(1, 8, 16))
assert abs(float(state.stats["theta"]) - 0.05) < 1e-6  # the rule's constant θ
