"""The memory really memorises: write key → value pairs with the pure update op, then read them back."""

import torch
import torch.nn.functional as F

from hercules.memory.models import LinearMemory, LinearMemoryConfig
from hercules.ops import memory_update_chunked

torch.manual_seed(0)
dim, pairs, passes = 64, 8, 10
model = LinearMemory(LinearMemoryConfig(init="zeros"), dim=dim, heads=1)  # an empty matrix memory
keys = F.normalize(torch.randn(1, pairs, dim), dim=-1)  # [N, L, d]: one row (batch × heads), L tokens
values = torch.randn(1, pairs, dim)
stream_k, stream_v = keys.repeat(1, passes, 1), values.repeat(1, passes, 1)  # show the pairs several times


def write(forget: float) -> dict[str, torch.Tensor]:
    """Stream the pairs through the memory (θ = 0.2, no momentum) and return the final weights."""
    weights = {n: p.detach() for n, p in model.initial.items()}  # [N, d, d]
    momentum = {n: torch.zeros_like(w) for n, w in weights.items()}
    rate = lambda value: torch.full(stream_k.shape[:2], value)  # noqa: E731 - [N, L]
    result = memory_update_chunked(
        model.functional, weights, momentum, q=stream_k, k=stream_k, v=stream_v,
        lr=rate(0.2), mom=rate(0.0), forget=rate(forget), chunk_size=1,
    )
    return result.weights


recall = F.cosine_similarity(model.functional(write(forget=0.0), keys), values, dim=-1)
print("recall, no forgetting:", [round(x, 3) for x in recall.squeeze().tolist()])
assert recall.min() > 0.9

# α = 1 erases the memory at every token: only the last write survives, the other pairs are forgotten.
forgot = F.cosine_similarity(model.functional(write(forget=1.0), keys), values, dim=-1)
print("recall, α = 1:", [round(x, 3) for x in forgot.squeeze().tolist()])
assert forgot[0, :-1].abs().max() < 0.5 and forgot[0, -1] > 0.9
