"""The built-in injection strategies' configs (no torch: recipes validate without it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hercules.injection.registry import INJECTIONS, InjectionConfig


class MALConfig(InjectionConfig):
    """Memory as a layer: the memory transforms the attention's (normalised) input."""

    kind: Literal["mal"] = "mal"


class MACConfig(InjectionConfig):
    """Memory as context: retrieved memory joins the attention input; it is mixed into the output too."""

    kind: Literal["mac"] = "mac"
    persistent_tokens: int = Field(
        0, ge=0, description="Learned persistent-memory tokens written into every fresh memory before the input."
    )
    write: Literal["input", "attention_output"] = Field(
        "input",
        description="What the memory learns from. input: the attention's input stream, read and written in one "
        "pass (the layer runs once per call). attention_output: the attention's output, as in Titans; the layer "
        "then runs once per memory chunk, attending to earlier chunks through a KV cache.",
    )


class MAGConfig(InjectionConfig):
    """Memory as a gate: a memory branch in parallel with attention, mixed through the gate."""

    kind: Literal["mag"] = "mag"


INJECTIONS.declare("mal", MALConfig, "hercules.injection.strategies")
INJECTIONS.declare("mac", MACConfig, "hercules.injection.strategies")
INJECTIONS.declare("mag", MAGConfig, "hercules.injection.strategies")
