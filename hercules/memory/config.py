"""The memory layer's config: which memory model, which update rule, heads, chunk size, convolution."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hercules.memory.models.configs import MEMORY_MODELS, MLPMemoryConfig
from hercules.memory.rules.configs import UPDATE_RULES, TitansRuleConfig
from hercules.registry import PluginConfig


class MemoryConfig(BaseModel):
    """Everything that defines a :class:`~hercules.memory.NeuralMemory` besides the model width.

    Examples:
        >>> cfg = MemoryConfig(model={"kind": "mlp", "depth": 3}, rule="delta", heads=2, chunk_size=8)
        >>> cfg.model.depth, cfg.rule.kind
        (3, 'delta')
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    model: MEMORY_MODELS.field_type() = Field(  # type: ignore[valid-type]
        default_factory=MLPMemoryConfig, description="The memory network (a memory-model plugin config)."
    )
    rule: UPDATE_RULES.field_type() = Field(  # type: ignore[valid-type]
        default_factory=TitansRuleConfig, description="How the memory learns (an update-rule plugin config)."
    )
    heads: int = Field(1, ge=1, le=1024, description="Independent memories, each on its own slice of q, k, v.")
    dim_head: int | None = Field(None, ge=1, le=65536, description="Size of each head; default: model dim / heads.")
    chunk_size: int = Field(16, ge=1, le=65536, description="Tokens per chunk c (1 = the pure per-token rule).")
    conv_kernel: int = Field(
        4,
        ge=0,
        le=64,
        description="Causal depthwise convolution width after the q/k/v projection; 0 or 1 disables it.",
    )
    max_grad_norm: float | None = Field(
        4.0,
        gt=0,
        allow_inf_nan=False,
        description="Clip each token's inner-loop gradient to this norm (over all memory weights; null: off). It "
        "bounds every token's step by θ·max_grad_norm, which keeps the memory finite at any learned rate "
        "(docs/concepts/memory.md, 'Stability'). The default 4 is above a fresh memory's per-token norms (about "
        "2.7 for mlp, 2 for linear, 0.35 for swiglu) and so clips only a growing memory.",
    )
    conv_init: Literal["identity", "random"] = Field(
        "identity",
        description="identity: the convolution starts as the identity (the projections keep their meaning in a "
        "pretrained model); random: PyTorch's default init, mixing each token with the ones before it from the "
        "start (models trained from scratch: associative recall needs a key made of the previous token).",
    )
    qk_norm: bool = Field(True, description="SiLU then L2 normalisation of queries and keys, as in Titans.")
    value_norm: bool = Field(
        True,
        description="L2-normalise the values per head, so that the reconstruction loss (a sum over the head's "
        "channels) and its gradients keep the same scale whatever the head size.",
    )
    input_norm: bool = Field(
        True,
        description="RMS-normalise the input (learned scale) before the projections and rates, so that the inner "
        "loop sees values of a fixed scale whatever the backbone's hidden-state magnitudes.",
    )
    zero_init_output: bool = Field(
        False, description="Start the output projection at zero (the layer then outputs 0)."
    )
    compile: bool = Field(
        False,
        description="torch.compile each chunk's read-and-gradient step (fuses its small kernels: +17% tokens/s "
        "on a CPU core at d=64, c=16, after about 45 s of compilation; no gain measured on an H100, where the "
        "chunk loop's kernel launches dominate: see cuda_graphs).",
    )
    cuda_graphs: bool = Field(
        False,
        description="On CUDA, in training (grad enabled) and from a fresh state: replay the layer's "
        "forward and backward as CUDA graphs, captured once per input shape (hercules.memory.cuda_graphs; the "
        "chunk loop is launch-bound on a GPU). Outputs live in the graph's buffers until the next call.",
    )
    backend: Literal["auto", "torch", "triton"] = Field(
        "auto",
        description="Which code runs the fast path's chunk loop: auto picks the fused Triton kernels on CUDA where "
        "triton imports and the memory model is supported (a depth-2 mlp), the torch path elsewhere; torch or "
        "triton forces one (see hercules.memory.backend).",
    )
    implementation: Literal["chunked", "naive"] = Field(
        "chunked",
        description="chunked: the fast path; naive: the token-by-token reference (slow, for checks).",
    )

    def head_size(self, dim: int) -> int:
        """The head size for a model of width ``dim``; errors if ``dim`` does not split into ``heads``."""
        if self.dim_head is not None:
            return self.dim_head
        if dim % self.heads:
            raise ValueError(
                f"memory.heads={self.heads} does not divide the model dim {dim}; set memory.dim_head"
            )
        return dim // self.heads

    def plugin_configs(self) -> dict[str, PluginConfig]:
        return {"model": self.model, "rule": self.rule}
