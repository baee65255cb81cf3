"""Use an injection strategy (and a gate) from a package of your own (docs/examples/my_plugins)."""

import my_plugins  # noqa: F401 - importing the package registers its plugins
import torch

import hercules
from hercules.backbones.tiny import tiny_model

model = tiny_model("qwen3")
ids = torch.randint(3, 200, (2, 12))
with torch.no_grad():
    reference = model(ids).logits
hercules.augment(model, {"injection": {"kind": "after_attention", "gate": "tanh"}, "layers": [-1],
                         "memory": {"chunk_size": 4}})
with torch.no_grad():
    torch.testing.assert_close(model(ids).logits, reference, rtol=0, atol=1e-6)  # identity at init

# Open the gate a little, and check that the memory now changes the output, causally: the logits of the
# first 4 tokens (one chunk) do not depend on the tokens after them.
layer = model.model.layers[-1]
layer.gate.scale.data.fill_(0.5)
with torch.no_grad():
    full = model(ids).logits
    prefix = model(ids[:, :4]).logits
assert not torch.allclose(full, reference)
torch.testing.assert_close(full[:, :4], prefix, rtol=1e-5, atol=1e-5)
