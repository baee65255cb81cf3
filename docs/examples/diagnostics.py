"""Per-layer diagnostics of the memory: gate, contribution, rates, surprise and norms, as tensors."""

import torch

import hercules
from hercules.backbones.tiny import tiny_model
from hercules.injection.diagnostics import layer_diagnostics, log_diagnostics

model = hercules.augment(tiny_model("gemma3"), {"injection": {"kind": "mag"}, "layers": [0, 1]})
with torch.no_grad():
    model(torch.randint(3, 259, (2, 24)))

stats = layer_diagnostics(model)  # {"layer0/gate_mean": 0-d tensor, ...}; nothing synchronises with the device
assert float(stats["layer0/contribution"]) == 0.0  # the gates start closed: the memory adds nothing yet
for name, value in sorted(log_diagnostics(model).items()):  # floats, for loggers (one synchronisation)
    print(f"{name:28s} {value:.4g}")
