"""A neural memory layer: read and write a per-sample memory while a sequence streams in."""

import torch

from hercules.memory import MemoryConfig, NeuralMemory

config = MemoryConfig(
    model={"kind": "mlp", "depth": 2, "expansion": 2.0},  # the network whose weights are the memory
    rule={"kind": "titans", "max_lr": 1e-2, "momentum": True, "forgetting": True},
    heads=2,
    chunk_size=4,
)
memory = NeuralMemory(dim=32, config=config)

x = torch.randn(2, 10, 32)  # [B, T, D]
y, state = memory(x)  # y: [B, T, D]; state: the memory after reading x
assert y.shape == x.shape

# Feeding the sequence in pieces, with the state carried, gives the same outputs as feeding it whole.
y1, s = memory(x[:, :3])
y2, s = memory(x[:, 3:7], state=s)
y3, s = memory(x[:, 7:], state=s)
torch.testing.assert_close(torch.cat([y1, y2, y3], dim=1), y, rtol=1e-5, atol=1e-6)

# The state is per sample: 10 tokens with chunk size 4 leave 2 tokens pending (read, not yet written).
print("batch size:", state.batch_size, "pending tokens:", state.pending_tokens)
print({name: round(float(value), 4) for name, value in state.stats.items()})

# Truncated backpropagation: detach the state between pieces.
y_next, state = memory(torch.randn(2, 4, 32), state=state.detach())
