"""Per-layer diagnostics of augmented layers, as tensors (no host synchronisation until they are logged).

For each memory layer, from its last forward call:

- ``gate_mean`` / ``gate_std``: the retrieval gate's value ``g`` (per channel and token);
- ``contribution``: ``‖g ⊙ m‖ / ‖base‖``, how much the memory adds relative to what it is mixed into;
- ``theta``, ``eta``, ``alpha``: mean effective learning rate, momentum and forgetting of the memory;
- ``surprise_norm``, ``weight_norm``, ``momentum_norm``: from the memory state's stats.

The gate statistics are computed when asked (from detached references kept by the layer), so a training step
that does not look at them pays nothing.

Examples:
    >>> import torch, hercules
    >>> from hercules.backbones.tiny import tiny_model
    >>> model = hercules.augment(tiny_model("llama"), {"layers": [0]})
    >>> _ = model(torch.randint(3, 259, (1, 8)))
    >>> stats = layer_diagnostics(model)
    >>> float(stats["layer0/contribution"])
    0.0
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hercules.injection.augment import memory_layers


@torch.no_grad()
def layer_diagnostics(model: nn.Module) -> dict[str, Tensor]:
    """``{"layer{i}/{name}": 0-d tensor}`` for every memory layer that has run (see the module docstring)."""
    out: dict[str, Tensor] = {}
    for index, layer in memory_layers(model).items():
        prefix = f"layer{index}/"
        last = layer.last
        if last:
            # under mixed precision the stored hidden states are in the autocast dtype, the gate's weights not
            weight = next(layer.gate.parameters(), None)
            hidden = last["hidden"] if weight is None else last["hidden"].to(weight.dtype)
            gate = layer.gate.value(hidden).float()
            added = (gate * last["memory_out"].float()).norm()
            out[prefix + "gate_mean"] = gate.mean()
            out[prefix + "gate_std"] = gate.std() if gate.numel() > 1 else gate.new_zeros(())
            out[prefix + "contribution"] = added / last["base"].float().norm().clamp_min(1e-12)
        for name, value in layer.last_stats.items():
            out[prefix + name] = value.detach()
    return out


def log_diagnostics(model: nn.Module) -> dict[str, float]:
    """:func:`layer_diagnostics` as Python floats, for loggers (this synchronises with the device once)."""
    stats = layer_diagnostics(model)
    if not stats:
        return {}
    values = torch.stack([v.float().reshape(()) for v in stats.values()]).tolist()
    return dict(zip(stats, values, strict=True))
