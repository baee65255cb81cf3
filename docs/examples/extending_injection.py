"""Register an injection strategy of your own: here the memory reads and writes the attention's output."""

from typing import Any, Literal

import torch
from torch import Tensor

import hercules
from hercules.backbones.tiny import tiny_model
from hercules.injection import InjectionConfig, MemoryLayer, register_injection


class MemoryAfterAttentionConfig(InjectionConfig):
    """Memory after attention: o + g(o) ⊙ M(o). The inherited `gate` field picks the retrieval gate."""

    kind: Literal["after_attention"] = "after_attention"


@register_injection("after_attention", MemoryAfterAttentionConfig)
class MemoryAfterAttention(MemoryLayer):
    """Only the output hook: the base layer, its attention and its cache are used as they are."""

    def after_attention(self, out: Tensor, ctx: dict[str, Any]) -> Tensor:
        memory_out = self.read_write(out, ctx)  # read and write this layer's memory state, once per call
        return self.mix(out, memory_out, out)  # the gate: out + g(out) ⊙ memory_out, closed at start


model = tiny_model("qwen3")
ids = torch.randint(3, 200, (2, 12))
with torch.no_grad():
    reference = model(ids).logits
hercules.augment(model, {"injection": {"kind": "after_attention", "gate": "scalar"}, "layers": [-1],
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
