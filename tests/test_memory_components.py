"""Registries, typed configs, gates, memory models, and a third-party plugin registered from outside."""

from __future__ import annotations

from typing import Literal

import pytest
import torch
from pydantic import ValidationError

from hercules.memory import (
    GATES,
    MEMORY_MODELS,
    UPDATE_RULES,
    MemoryConfig,
    MemoryModel,
    NeuralMemory,
    build_gate,
    register_memory_model,
)
from hercules.registry import PluginConfig, Registry, RegistryError


def test_builtins_are_registered():
    assert MEMORY_MODELS.names() == ["linear", "mlp", "swiglu"]
    assert UPDATE_RULES.names() == ["delta", "titans"]
    assert GATES.names() == ["none", "scalar", "sigmoid"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"model": {"kind": "transformer"}}, r"model\n.*unknown memory model kind 'transformer'; valid choices: linear, mlp, swiglu"),
        ({"rule": {"kind": "titans", "max_lr": -1}}, r"rule\n.*update rule 'titans': max_lr: Input should be greater than 0"),
        ({"model": {"kind": "mlp", "width": 3}}, r"model\n.*width: Extra inputs are not permitted"),
        ({"chunk_size": 0}, r"chunk_size\n.*greater than or equal to 1"),
        ({"heads": 2, "colour": "red"}, r"colour\n.*Extra inputs"),
    ],
)
def test_bad_config_names_the_field_and_choices(config, expected):
    with pytest.raises(ValidationError, match=expected):
        MemoryConfig(**config)


def test_registry_rejects_duplicates_and_lists_choices_for_unknown():
    reg = Registry("widget")
    reg.register("a")(object)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a")(int)
    with pytest.raises(RegistryError, match="unknown widget 'b'; valid choices: a"):
        reg.get("b")


def test_a_declared_component_validates_its_config_and_imports_its_module_on_first_get(monkeypatch):
    reg = Registry("widget")

    class WidgetConfig(PluginConfig):
        kind: Literal["json"] = "json"

    reg.declare("json", WidgetConfig, "json.decoder")  # any importable module stands in for the implementation
    assert "json" in reg and reg.parse("json") == WidgetConfig()
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("json")(int)  # defined outside the declared module
    imported = []
    monkeypatch.setattr("importlib.import_module", lambda name: imported.append(name) or reg.register("json")(
        type("Widget", (), {"__module__": name})))
    assert reg.get("json").__module__ == "json.decoder" and imported == ["json.decoder"]


def test_head_split_error_names_the_fix():
    with pytest.raises(ValueError, match="memory.heads=3 does not divide the model dim 16; set memory.dim_head"):
        NeuralMemory(16, MemoryConfig(heads=3))


def test_config_round_trips_through_json():
    cfg = MemoryConfig(model={"kind": "swiglu", "expansion": 3.0}, rule="delta", heads=2)
    again = MemoryConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg and again.model.expansion == 3.0


@pytest.mark.parametrize("kind", ["sigmoid", "scalar"])
def test_gates_contribute_exactly_zero_at_init_and_learn(kind):
    gate = build_gate(kind, 8)
    base, mem, hidden = (torch.randn(2, 5, 8) for _ in range(3))
    out = gate(base, mem, hidden)
    assert torch.equal(out, base) and gate.zero_at_init
    out.pow(2).sum().backward()
    assert gate.scale.grad.abs().sum() > 0  # training moves the gate away from zero


def test_ungated_memory_needs_zero_output_for_identity():
    gate = build_gate({"kind": "none"}, 8)
    memory = NeuralMemory(8, MemoryConfig(zero_init_output=True))
    base, hidden = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    assert not gate.zero_at_init
    assert torch.equal(gate(base, memory(hidden)[0], hidden), base)


def test_linear_memory_starts_empty_and_mlp_is_residual():
    linear = MEMORY_MODELS.get("linear")(MEMORY_MODELS.config("linear")(), dim=4, heads=1)
    assert torch.equal(linear(torch.randn(1, 3, 4)), torch.zeros(1, 3, 4))
    mlp = MEMORY_MODELS.get("mlp")(MEMORY_MODELS.config("mlp")(residual=False), dim=4, heads=1)
    with torch.no_grad():
        for p in mlp.initial.values():
            p.zero_()
    assert torch.equal(mlp(torch.ones(1, 3, 4)), torch.zeros(1, 3, 4))


class CubicConfig(PluginConfig):
    kind: Literal["cubic-test"] = "cubic-test"
    scale: float = 1.0


class CubicMemory(MemoryModel):
    """A third-party memory model, defined outside the package: ``M(x) = x + (x W)^3 · scale``."""

    def __init__(self, config, dim, heads):
        super().__init__(config, dim, heads)
        self.add_weight("w", dim, dim)

    def functional(self, weights, x):
        return x + self.config.scale * (x @ weights["w"]).pow(3)


def test_third_party_memory_model_plugs_in():
    register_memory_model("cubic-test", CubicConfig)(CubicMemory)
    try:
        cfg = MemoryConfig(model={"kind": "cubic-test", "scale": 0.5}, chunk_size=2)
        torch.manual_seed(0)
        fast = NeuralMemory(8, cfg)
        naive = NeuralMemory(8, cfg.model_copy(update={"implementation": "naive"}))
        naive.load_state_dict(fast.state_dict())
        x = torch.randn(2, 7, 8)
        assert isinstance(fast.model, CubicMemory)
        torch.testing.assert_close(fast(x)[0], naive(x)[0], rtol=1e-5, atol=1e-6)
    finally:
        MEMORY_MODELS.unregister("cubic-test")
    with pytest.raises(ValidationError, match="valid choices: linear, mlp, swiglu"):
        MemoryConfig(model={"kind": "cubic-test"})
