"""Retrieval gates mix a base output with the memory's output; at initialisation the memory adds exactly zero."""

import torch

from hercules.memory.gates import GATES, build_gate

dim = 16
base, memory_out, hidden = torch.randn(3, 2, 5, dim).unbind(0)  # each [B, T, D]

for kind in ["sigmoid", "scalar"]:
    gate = build_gate({"kind": kind}, dim)
    assert torch.equal(gate(base, memory_out, hidden), base)  # bit for bit: the memory contributes nothing yet

# `none` adds the memory's output as is; identity at initialisation then needs a zero-initialised memory output.
none = build_gate("none", dim)
torch.testing.assert_close(none(base, memory_out, hidden), base + memory_out)
print("registered gates:", GATES.names())
