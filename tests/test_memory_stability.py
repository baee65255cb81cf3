"""The inner loop stays finite: per-token gradient clipping (``MemoryConfig.max_grad_norm``), exact on the fast
path, bounds every step whatever the learned rates, keys and values."""

from __future__ import annotations

import math

import pytest
import torch
from memory_helpers import MODELS, RULES, memory_pair, rel_err

from hercules.memory import MemoryConfig, NeuralMemory
from hercules.memory.models import MEMORY_MODELS
from hercules.memory.models.base import MemoryModel
from hercules.ops.memory_update_naive import clip_factor, gradient_norm, token_gradient


def _loss_and_grads(memory, x):
    y, state = memory(x)
    loss = y.pow(2).sum() + sum(w.pow(2).sum() for w in state.weights.values())
    return y, state, torch.autograd.grad(loss, [x, *memory.parameters()], allow_unused=True)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: "-".join(str(v) for v in r.values()))
@pytest.mark.parametrize("model", MODELS, ids=lambda m: "-".join(str(v) for v in m.values()))
def test_fast_path_equals_reference_with_clipping_active(model, rule):
    fast, naive = memory_pair(model=model, rule=rule | {"max_lr": 0.5}, heads=2, chunk_size=4, max_grad_norm=0.3)
    fast, naive = fast.double(), naive.double()
    x = torch.randn(2, 19, 16, dtype=torch.float64, requires_grad=True)
    y_f, s_f, g_f = _loss_and_grads(fast, x)
    y_n, s_n, g_n = _loss_and_grads(naive, x)
    assert rel_err(y_f, y_n) <= 1e-10
    for name in s_n.weights:
        assert rel_err(s_f.weights[name], s_n.weights[name]) <= 1e-10
    for a, b in zip(g_f, g_n, strict=True):
        assert (a is None) == (b is None)
        if b is not None:
            assert rel_err(a, b) <= 1e-10
    # the clipping is active here: without it the weights differ
    plain, _ = memory_pair(model=model, rule=rule | {"max_lr": 0.5}, heads=2, chunk_size=4, max_grad_norm=None)
    assert rel_err(plain.double()(x)[1].weights[name], s_n.weights[name]) > 1e-3


class _Cubic(MemoryModel):
    """A model with neither a chunk kernel nor closed-form norms: the generic torch.func paths."""

    def __init__(self, config, dim, heads):
        super().__init__(config, dim, heads)
        self.add_weight("w", dim, dim)

    def functional(self, weights, x):
        return x + (x @ weights["w"]).pow(3)


def test_generic_model_clipping_equals_reference():
    cfg_cls = MEMORY_MODELS.config("mlp")
    fast, naive = memory_pair(heads=2, chunk_size=4, max_grad_norm=0.2)
    for memory in (fast, naive):
        memory.model = _Cubic(cfg_cls(), 8, 2)
    naive.model.load_state_dict(fast.model.state_dict())
    fast, naive = fast.double(), naive.double()
    x = torch.randn(2, 13, 16, dtype=torch.float64, requires_grad=True)
    y_f, _, g_f = _loss_and_grads(fast, x)
    y_n, _, g_n = _loss_and_grads(naive, x)
    assert rel_err(y_f, y_n) <= 1e-10
    assert all(rel_err(a, b) <= 1e-10 for a, b in zip(g_f, g_n, strict=True) if b is not None)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: "-".join(str(v) for v in m.values()))
def test_closed_form_gradient_norms_equal_autograd(model):
    memory = NeuralMemory(16, MemoryConfig(model=model, heads=2)).double()
    weights = {n: p.detach().double().repeat(3, 1, 1) for n, p in memory.model.initial.items()}
    k, v = torch.randn(6, 5, 8, dtype=torch.float64), torch.randn(6, 5, 8, dtype=torch.float64)
    norms = memory.model.gradient_norms(weights, k, v)
    for t in range(5):
        g = token_gradient(memory.model.functional, weights, k[:, t : t + 1], v[:, t : t + 1])
        torch.testing.assert_close(norms[:, t], gradient_norm(g), rtol=1e-10, atol=1e-12)


def test_clip_factor_bounds_the_step_and_leaves_small_gradients():
    norms = torch.tensor([0.0, 0.5, 2.0, 1e30, math.inf])
    f = clip_factor(norms, 1.0)
    assert f.tolist()[:2] == [1.0, 1.0]
    assert torch.all(f * norms.nan_to_num(posinf=0) <= 1.0 + 1e-6)
    assert torch.equal(clip_factor(norms, None), torch.ones_like(norms))


def _extreme_rates(memory: NeuralMemory, momentum_high: bool = True) -> None:
    """θ at max_lr, η at its largest, α at 0: the rates' least stable corner."""
    with torch.no_grad():
        for name, high in (("lr", True), ("mom", momentum_high), ("forget", False)):
            projection = getattr(memory.rule, name, None)
            if projection is not None:
                projection.weight.zero_()
                projection.bias.fill_(30.0 if high else -30.0)


def _stream(memory: NeuralMemory, tokens: int, scale: float, block: int = 2048) -> tuple[float, float]:
    """Largest |weight| and |read| over a stream of random inputs of RMS ``scale``."""
    state, worst_w, worst_y = None, 0.0, 0.0
    torch.manual_seed(1)
    with torch.no_grad():
        for _ in range(0, tokens, block):
            y, state = memory(torch.randn(1, block, memory.dim) * scale, state)
            if not (all(torch.isfinite(w).all() for w in state.weights.values()) and torch.isfinite(y).all()):
                return math.inf, math.inf
            worst_w = max(worst_w, *(float(w.abs().max()) for w in state.weights.values()))
            worst_y = max(worst_y, float(y.abs().max()))
    return worst_w, worst_y


RAW = dict(input_norm=False, qk_norm=False, value_norm=False)  # nothing normalises the inner loop's inputs


@pytest.mark.parametrize("rule", [{"kind": "titans", "max_lr": 1.0}, {"kind": "delta", "max_lr": 1.0}],
                         ids=["titans", "delta"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: "-".join(str(v) for v in m.values()))
def test_extreme_rates_stay_finite_with_clipping(model, rule):
    torch.manual_seed(0)
    unclipped = NeuralMemory(32, MemoryConfig(model=model, rule=rule, heads=2, chunk_size=16, max_grad_norm=None,
                                              **RAW))
    _extreme_rates(unclipped)
    weights, reads = _stream(unclipped, 4096, 10.0)
    assert not (math.isfinite(weights) and math.isfinite(reads) and weights < 1e6), "the unclipped case is stable?"
    torch.manual_seed(0)
    clipped = NeuralMemory(32, MemoryConfig(model=model, rule=rule, heads=2, chunk_size=16, max_grad_norm=1.0, **RAW))
    _extreme_rates(clipped)
    weights, reads = _stream(clipped, 4096, 10.0)
    assert math.isfinite(weights) and math.isfinite(reads)


@pytest.mark.slow
@pytest.mark.parametrize("scale", [1.0, 1e3])
@pytest.mark.parametrize("rule", [{"kind": "titans", "max_lr": 1.0}, {"kind": "delta", "max_lr": 1.0}],
                         ids=["titans", "delta"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: "-".join(str(v) for v in m.values()))
def test_hundred_thousand_tokens_at_extreme_rates_stay_bounded(model, rule, scale):
    """100k tokens with θ at max_lr = 1, η at max_momentum and α = 0, inputs unnormalised and large: finite, and
    the weights stay within a fixed bound (measured: see docs/concepts/memory.md, 'Stability')."""
    torch.manual_seed(0)
    memory = NeuralMemory(16, MemoryConfig(model=model, rule=rule, heads=2, chunk_size=32, max_grad_norm=1.0, **RAW))
    _extreme_rates(memory)
    weights, reads = _stream(memory, 100_000, scale, block=8192)
    assert math.isfinite(reads) and weights < 1e4, (weights, reads)
