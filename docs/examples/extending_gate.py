"""Use a retrieval gate from a package of your own (docs/examples/my_plugins); it starts closed."""

import my_plugins  # noqa: F401 - importing the package registers its plugins
import torch

from hercules.memory import build_gate

gate = build_gate({"kind": "tanh"}, dim=8)
base, memory_out = torch.randn(2, 1, 3, 8).unbind(0)
assert torch.equal(gate(base, memory_out, hidden=base), base)
