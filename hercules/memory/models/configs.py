"""The memory-model registry and the built-in models' configs (no torch: recipes validate without it).

Each built-in is declared with the module that implements it; :meth:`~hercules.registry.Registry.get` imports
that module on first use.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hercules.registry import PluginConfig, Registry

MEMORY_MODELS: Registry[type] = Registry("memory model")
register_memory_model = MEMORY_MODELS.register


class MLPMemoryConfig(PluginConfig):
    """A residual MLP memory (the Titans default)."""

    kind: Literal["mlp"] = "mlp"
    depth: int = Field(2, ge=1, le=64, description="Number of weight matrices; 1 is a residual linear map.")
    expansion: float = Field(2.0, gt=0, le=64, description="Hidden width as a multiple of the head size.")
    activation: Literal["gelu", "silu", "relu", "tanh"] = Field("gelu", description="Hidden nonlinearity.")
    residual: bool = Field(True, description="Add the input to the output (M(x) = x + MLP(x)).")


class LinearMemoryConfig(PluginConfig):
    """A single matrix per head."""

    kind: Literal["linear"] = "linear"
    init: Literal["zeros", "normal"] = Field(
        "zeros", description="zeros: an empty memory that reads 0; normal: N(0, 1/d) entries."
    )


class SwiGLUMemoryConfig(PluginConfig):
    """A gated MLP memory, as in the feed-forward blocks of Llama-family models."""

    kind: Literal["swiglu"] = "swiglu"
    expansion: float = Field(2.0, gt=0, le=64, description="Hidden width as a multiple of the head size.")
    residual: bool = Field(True, description="Add the input to the output.")


MEMORY_MODELS.declare("mlp", MLPMemoryConfig, "hercules.memory.models.mlp")
MEMORY_MODELS.declare("linear", LinearMemoryConfig, "hercules.memory.models.linear")
MEMORY_MODELS.declare("swiglu", SwiGLUMemoryConfig, "hercules.memory.models.swiglu")
