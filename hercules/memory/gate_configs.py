"""The retrieval-gate registry and the built-in gates' configs (no torch: recipes validate without it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hercules.registry import PluginConfig, Registry

GATES: Registry[type] = Registry("retrieval gate")
register_gate = GATES.register


class SigmoidGateConfig(PluginConfig):
    """Per-channel, data-dependent gate."""

    kind: Literal["sigmoid"] = "sigmoid"
    bias: float = Field(0.0, description="Initial bias of the sigmoid (its logit before any input).")


class ScalarGateConfig(PluginConfig):
    """One learned scalar."""

    kind: Literal["scalar"] = "scalar"


class NoGateConfig(PluginConfig):
    """No gate: the memory output is added as it is."""

    kind: Literal["none"] = "none"


GATES.declare("sigmoid", SigmoidGateConfig, "hercules.memory.gates")
GATES.declare("scalar", ScalarGateConfig, "hercules.memory.gates")
GATES.declare("none", NoGateConfig, "hercules.memory.gates")
