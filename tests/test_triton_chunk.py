"""The fused Triton chunk loop (hercules.ops.triton_chunk) held to the naive reference, on CPU under Triton's
interpreter.

Triton decides between compiling and interpreting when a kernel is defined (its own standard library's too, when
``triton`` is first imported), from ``TRITON_INTERPRET``, and peft or titans-pytorch import it while the tests are
collected: ``tests/conftest.py`` sets the variable for the run on machines without CUDA. This module is skipped
on a CUDA machine (tests/test_triton_cuda.py runs the compiled kernels there), without ``triton``, or when the
interpreter is off.
"""

from __future__ import annotations

import logging
import os

import pytest
import torch

if torch.cuda.is_available():
    pytest.skip("interpreter tests run on machines without CUDA", allow_module_level=True)
if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs TRITON_INTERPRET=1 before triton is imported (tests/conftest.py)", allow_module_level=True)
pytest.importorskip("triton")

from memory_helpers import rel_err  # noqa: E402
from triton_helpers import assert_equal, problem, run_update  # noqa: E402

from hercules.memory import MemoryConfig, NeuralMemory  # noqa: E402
from hercules.memory.backend import triton_update  # noqa: E402
from hercules.memory.models.mlp import MLPMemory, MLPMemoryConfig  # noqa: E402
from hercules.ops.memory_update_naive import memory_update_naive  # noqa: E402
from hercules.ops.triton_chunk import MLPSpec, memory_update_triton, supports  # noqa: E402


@pytest.mark.parametrize(
    ("depth", "activation", "residual", "dim", "chunk", "length"),
    [
        (2, "gelu", True, 16, 4, 13),
        (2, "silu", False, 32, 8, 16),
        (2, "tanh", True, 16, 8, 9),
        (2, "relu", True, 32, 4, 12),
        (2, "gelu", True, 16, 20, 45),  # chunks walked in two steps of 16 tokens, the second partial
        (1, "gelu", True, 16, 4, 14),
        (1, "gelu", False, 32, 8, 16),
        (1, "gelu", True, 16, 36, 40),
    ],
)
def test_fused_equals_naive_reference(depth, activation, residual, dim, chunk, length):
    model, args = problem(3, length, dim, activation, residual, depth=depth)
    spec = MLPSpec(depth, activation, residual)
    fused = run_update(lambda *a, **kw: memory_update_triton(spec, model.functional, *a, **kw), args, chunk)
    reference = run_update(lambda *a: memory_update_naive(model.functional, *a), args, chunk)
    assert_equal(fused, reference)


@pytest.mark.parametrize(("depth", "residual", "chunk"), [(2, True, 4), (2, False, 20), (1, True, 8)])
def test_fused_with_gradient_clipping_equals_naive_reference(depth, residual, chunk):
    model, args = problem(3, 45, 16, "silu", residual, depth=depth)
    spec = MLPSpec(depth, "silu", residual)
    tau = 0.5  # below most tokens' gradient norms here, so most are clipped
    fused = run_update(
        lambda *a: memory_update_triton(spec, model.functional, *a, max_grad_norm=tau), args, chunk
    )
    reference = run_update(lambda *a: memory_update_naive(model.functional, *a, max_grad_norm=tau), args, chunk)
    unclipped = memory_update_naive(model.functional, *args, chunk)
    assert rel_err(reference[0].y, unclipped.y) > 1e-2  # the clip is active
    assert_equal(fused, reference)


def test_fused_without_gradients_equals_with():
    model, args = problem(2, 12, 16, "gelu", True)
    spec = MLPSpec(2, "gelu", True)
    with torch.no_grad():
        plain = memory_update_triton(spec, model.functional, *args, 4)
    tracked = memory_update_triton(spec, model.functional, *args, 4)
    assert torch.equal(plain.y, tracked.y.detach())
    assert all(torch.equal(plain.weights[n], tracked.weights[n].detach()) for n in plain.weights)


def _layers(seed: int = 0, **config):
    """The same layer with the Triton backend and with the naive implementation, in float64."""
    config.setdefault("rule", {"kind": "titans", "max_lr": 0.5, "init_forget": 0.1, "init_momentum": 0.6})
    torch.manual_seed(seed)
    fused = NeuralMemory(32, MemoryConfig(heads=2, chunk_size=4, backend="triton", **config))
    naive = NeuralMemory(32, MemoryConfig(heads=2, chunk_size=4, implementation="naive", **config))
    naive.load_state_dict(fused.state_dict())
    return fused.double(), naive.double()


def _stream(layer, x, splits):
    ys, state = [], None
    for piece in torch.split(x, splits, dim=1):
        y, state = layer(piece, state)
        ys.append(y)
    return torch.cat(ys, 1), state


@pytest.mark.parametrize(
    ("splits", "model", "max_grad_norm"),
    [
        ([23], {"kind": "mlp"}, None),
        ([3, 7, 1, 12], {"kind": "mlp"}, 0.3),
        ([4, 8, 11], {"kind": "linear", "init": "normal"}, None),
    ],
)
def test_layer_streams_with_a_carried_state_like_the_reference(splits, model, max_grad_norm):
    fused, naive = _layers(model=model, max_grad_norm=max_grad_norm)
    x = torch.randn(2, 23, 32, dtype=torch.float64)
    results = []
    for layer in (fused, naive):
        y, state = _stream(layer, x, splits)
        loss = y.pow(2).sum() + sum(w.pow(2).sum() for w in state.weights.values())
        grads = torch.autograd.grad(loss, list(layer.parameters()))
        results.append((y, state, grads))
    (y, state, grads), (ref_y, ref_state, ref_grads) = results
    assert rel_err(y, ref_y) < 2e-5
    for name in ref_state.weights:
        assert rel_err(state.weights[name], ref_state.weights[name]) < 2e-5
        assert rel_err(state.momentum[name], ref_state.momentum[name]) < 2e-5
    for (name, _), g, r in zip(naive.named_parameters(), grads, ref_grads, strict=True):
        assert rel_err(g, r) < 2e-5, name


def test_kernel_support_is_depth_one_or_two_within_the_tile_limit():
    w = lambda d, h: {"w0": torch.zeros(1, d, h), "w1": torch.zeros(1, h, d)}  # noqa: E731
    assert supports(MLPSpec(2, "gelu", True), w(64, 128))
    assert supports(MLPSpec(2, "gelu", True), w(48, 96))  # tiles of 64 × 128, masked
    assert not supports(MLPSpec(2, "gelu", True), w(128, 256))
    assert supports(MLPSpec(1, "none", False), {"w": torch.zeros(1, 64, 64)})
    deeper = w(16, 32) | {"w2": torch.zeros(1, 32, 16)}
    assert not supports(MLPSpec(3, "gelu", True), deeper)
    assert not supports(None, w(16, 32))


def test_dispatch_auto_on_cpu_and_triton_forced_on_an_unsupported_model(caplog):
    model, args = problem(2, 8, 16, "gelu", True)
    assert triton_update("auto", model, *args, 4) is None  # CPU tensors: the torch path
    assert triton_update("torch", model, *args, 4) is None
    assert triton_update("triton", model, *args, 4) is not None
    deep = MLPMemory(MLPMemoryConfig(depth=3), 16, 2)
    weights = {n: p.detach().double() for n, p in deep.initial.items()}
    with caplog.at_level(logging.WARNING, logger="hercules.memory.backend"):
        assert triton_update("triton", deep, weights, weights, *args[2:], 4) is None
    assert "does not support" in caplog.text


def test_triton_forced_on_cpu_without_the_interpreter_names_the_fix(monkeypatch):
    model, args = problem(2, 8, 16, "gelu", True)
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(ValueError, match="backend: auto"):
        triton_update("triton", model, *args, 4)


def test_resource_check_compares_compiled_shared_memory_with_the_device(monkeypatch, caplog):
    """The CUDA-only check, with the compilation and the device's limit stubbed: it compares, caches per
    configuration, and turns a check that cannot run into the torch path with a warning."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    from hercules.ops import triton_chunk

    fake_q = SimpleNamespace(is_cuda=True, dtype=torch.float32, device=torch.device("cpu"), new_empty=torch.empty)
    weights = {"w0": torch.zeros(1, 64, 128), "w1": torch.zeros(1, 128, 64)}
    spec = MLPSpec(2, "gelu", True)
    compiled = []
    monkeypatch.setattr(triton_chunk, "_FITS", {})
    monkeypatch.setattr(triton_chunk, "_shared_memory_limit", lambda device: 232448)
    monkeypatch.setattr(triton_chunk, "_on_device", lambda q: nullcontext())

    def compile_stub(spec, forward, backward, sizes, options, q):
        compiled.append(sizes)
        return (139520, 73984) if sizes[1] == 64 else (540928, 278784)

    monkeypatch.setattr(triton_chunk, "_compiled_shared_memory", compile_stub)
    assert triton_chunk.fits_on_device(spec, weights, fake_q, 16)
    assert triton_chunk.fits_on_device(spec, weights, fake_q, 16)  # cached: compiled once
    large = {"w0": torch.zeros(1, 128, 256), "w1": torch.zeros(1, 256, 128)}
    assert not triton_chunk.fits_on_device(spec, large, fake_q, 16)
    assert compiled == [(16, 64, 128), (16, 128, 256)]

    def broken(*args):
        raise RuntimeError("no driver")

    monkeypatch.setattr(triton_chunk, "_compiled_shared_memory", broken)
    with caplog.at_level(logging.WARNING, logger="hercules.ops.triton_chunk"):
        assert not triton_chunk.fits_on_device(spec, weights, fake_q, 16, max_grad_norm=1.0)
    assert "using the torch path" in caplog.text
