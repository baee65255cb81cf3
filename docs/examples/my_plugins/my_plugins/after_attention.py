"""An injection strategy of our own: the memory reads and writes the attention's output."""

from typing import Any, Literal

from torch import Tensor

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
