"""The fast chunked path equals the token-by-token reference, in outputs and in every parameter's gradient."""

from __future__ import annotations

import pytest
import torch
from memory_helpers import MODELS, RULES, memory_pair, rel_err


def _run(memory, x):
    y, state = memory(x)
    loss = y.pow(2).sum() + sum(w.pow(2).sum() for w in state.weights.values())
    grads = torch.autograd.grad(loss, list(memory.parameters()), allow_unused=True)
    return y, state, dict(zip([n for n, _ in memory.named_parameters()], grads, strict=True))


@pytest.mark.parametrize("chunk", [1, 4, 16])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: "-".join(str(v) for v in m.values()))
def test_fast_equals_reference_outputs_and_gradients(chunk, model):
    fast, naive = memory_pair(model=model, heads=2, chunk_size=chunk)
    x = torch.randn(2, 37, 16)  # 37 is a multiple of none of the chunk sizes
    y_f, s_f, g_f = _run(fast, x)
    y_n, s_n, g_n = _run(naive, x)
    assert rel_err(y_f, y_n) <= 1e-5
    for name in s_n.weights:
        assert rel_err(s_f.weights[name], s_n.weights[name]) <= 1e-5
        assert rel_err(s_f.momentum[name], s_n.momentum[name]) <= 1e-5
    for name, g in g_n.items():
        if g is None:  # e.g. rate projections switched off
            assert g_f[name] is None
            continue
        assert rel_err(g_f[name], g) <= 1e-5, name
    # every projection (q, k, v via to_qkv and the conv; θ, η, α) and the initial weights receive gradient
    learned = [n for n in g_n if n.startswith(("to_qkv", "conv", "rule", "model.initial"))]
    assert all(g_f[n] is not None and g_f[n].abs().sum() > 0 for n in learned)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: "-".join(str(v) for v in r.values()))
def test_fast_equals_reference_for_every_rule(rule):
    fast, naive = memory_pair(rule=rule | {"max_lr": 0.1}, heads=4, chunk_size=4)
    x = torch.randn(3, 18, 16)
    y_f, s_f, g_f = _run(fast, x)
    y_n, s_n, g_n = _run(naive, x)
    assert rel_err(y_f, y_n) <= 1e-5
    for name, g in g_n.items():
        if g is not None:
            assert rel_err(g_f[name], g) <= 1e-5, name


def test_rates_switched_off_are_exact_zeros():
    fast, _ = memory_pair(rule={"kind": "titans", "momentum": False, "forgetting": False})
    rates = fast.rule.rates(torch.randn(1, 5, 16))
    assert torch.equal(rates.mom, torch.zeros_like(rates.mom))
    assert torch.equal(rates.forget, torch.zeros_like(rates.forget))
    assert fast.rule.mom is None and fast.rule.forget is None


def test_inner_loop_gradient_matches_finite_differences():
    """The loss on y reaches the rate and q/k/v projections *through* the memory updates."""
    torch.manual_seed(0)
    fast, _ = memory_pair(dim=4, model={"kind": "mlp", "depth": 2}, chunk_size=2, conv_kernel=0)
    fast = fast.double()
    x = torch.randn(1, 7, 4, dtype=torch.float64)
    params = {n: p for n, p in fast.named_parameters() if n.startswith(("rule", "to_qkv"))}

    def loss():
        return fast(x)[0].pow(2).sum()

    grads = torch.autograd.grad(loss(), list(params.values()))
    for (name, p), g in zip(params.items(), grads, strict=True):
        idx = tuple(torch.nonzero(g.abs() == g.abs().max())[0])
        with torch.no_grad():
            p[idx] += 1e-6
            up = loss()
            p[idx] -= 2e-6
            down = loss()
            p[idx] += 1e-6
        numeric = (up - down) / 2e-6
        assert abs(numeric - g[idx]) <= 1e-6 + 1e-5 * abs(numeric), name
    # the rate projections influence y only through writes to the memory: their gradient is the inner loop's
    assert all(g.abs().sum() > 0 for n, g in zip(params, grads, strict=True) if n.startswith("rule"))


@pytest.mark.parametrize("activation", ["gelu", "silu", "relu", "tanh"])
@pytest.mark.parametrize("depth,residual", [(1, True), (1, False), (2, True), (2, False), (3, True)])
def test_mlp_chunk_backward_equals_autograd(activation, depth, residual):
    """The hand-written chunk backward of the MLP memory (and of the linear one: depth 1, no residual) against
    autograd through its closed-form forward, in float64."""
    from hercules.ops.activations import ACTIVATION_GRADS, ACTIVATION_SECONDS, ACTIVATIONS
    from hercules.ops.mlp_chunk import Activation, mlp_chunk_backward, mlp_chunk_forward

    torch.manual_seed(depth)
    act = Activation(ACTIVATIONS[activation], ACTIVATION_GRADS[activation], ACTIVATION_SECONDS[activation])
    rows, n, sizes = 3, 4, [5] + [7] * (depth - 1) + [5]
    weights = [
        (torch.randn(rows, fan_in, fan_out, dtype=torch.float64) / fan_in**0.5).requires_grad_()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    q, k, v = (torch.randn(rows, n, 5, dtype=torch.float64, requires_grad=True) for _ in range(3))
    token_weights = torch.randn(rows, 2, n, dtype=torch.float64, requires_grad=True)
    y, grads, saved = mlp_chunk_forward(weights, q, k, v, token_weights, act, residual)
    grad_y = torch.randn_like(y)
    grad_grads = [torch.randn_like(g) for g in grads]
    expected = torch.autograd.grad([y, *grads], [*weights, q, k, v, token_weights], [grad_y, *grad_grads])
    with torch.no_grad():
        d_weights, dq, dk, dv, dtw = mlp_chunk_backward(
            weights, q, k, v, token_weights, saved, grad_y, grad_grads, act, residual
        )
    for got, want in zip([*d_weights, dq, dk, dv, dtw], expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("residual", [True, False])
def test_swiglu_chunk_backward_equals_autograd(residual):
    """The SwiGLU memory's hand-written chunk backward against autograd through its closed form (float64)."""
    from hercules.ops.swiglu_chunk import swiglu_chunk_backward, swiglu_chunk_forward

    torch.manual_seed(0)
    rows, n, dim, hidden = 3, 4, 5, 7
    shapes = {"gate": (dim, hidden), "up": (dim, hidden), "down": (hidden, dim)}
    weights = {
        name: (torch.randn(rows, *shape, dtype=torch.float64) / shape[0] ** 0.5).requires_grad_()
        for name, shape in shapes.items()
    }
    q, k, v = (torch.randn(rows, n, dim, dtype=torch.float64, requires_grad=True) for _ in range(3))
    token_weights = torch.randn(rows, 2, n, dtype=torch.float64, requires_grad=True)
    y, grads, saved = swiglu_chunk_forward(weights, q, k, v, token_weights, residual)
    grad_y = torch.randn_like(y)
    grad_grads = {name: torch.randn_like(g) for name, g in grads.items()}
    inputs = [*weights.values(), q, k, v, token_weights]
    expected = torch.autograd.grad([y, *grads.values()], inputs, [grad_y, *(grad_grads[n] for n in grads)])
    with torch.no_grad():
        d_weights, dq, dk, dv, dtw = swiglu_chunk_backward(
            weights, q, k, v, token_weights, saved, grad_y, grad_grads, residual
        )
    for got, want in zip([*(d_weights[n] for n in weights), dq, dk, dv, dtw], expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def _graph_nodes(tensor: torch.Tensor) -> int:
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.add(node)
            stack += [next_fn for next_fn, _ in node.next_functions]
    return len(seen)


@pytest.mark.parametrize("model", [{"kind": "mlp"}, {"kind": "linear"}, {"kind": "swiglu"}], ids=lambda m: m["kind"])
def test_chunk_loop_is_one_autograd_node_whatever_the_length(model):
    """With a chunk kernel the autograd graph does not grow with the number of chunks (each node of a per-chunk
    graph is a host round trip and a few kernel launches on a GPU); without one, it does."""
    fast, _ = memory_pair(model=model, chunk_size=4)
    short, long = torch.randn(1, 8, 16), torch.randn(1, 64, 16)
    assert _graph_nodes(fast(long)[0]) == _graph_nodes(fast(short)[0])
    fast.model.read_and_gradients = fast.model.read_and_gradients  # an override turns the kernel off
    assert _graph_nodes(fast(long)[0]) > _graph_nodes(fast(short)[0]) + 14 * 5


@pytest.mark.parametrize("model", MODELS, ids=lambda m: "-".join(str(v) for v in m.values()))
def test_chunk_scan_under_autocast_equals_per_chunk_autograd(model):
    """Under bf16 autocast (CPU), the one-node chunk loop computes what the per-chunk autograd loop computes,
    and the carried state stays in float32."""
    fast, _ = memory_pair(model=model, heads=2, chunk_size=4)
    x = torch.randn(2, 19, 16)
    results = []
    for kernel in (True, False):
        if not kernel:  # an instance-level read_and_gradients turns the kernel off
            fast.model.read_and_gradients = fast.model.read_and_gradients
            assert fast.model.chunk_kernel is None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            results.append(_run(fast, x))
    (y_k, s_k, g_k), (y_a, s_a, g_a) = results
    assert all(w.dtype == torch.float32 for w in [*s_k.weights.values(), *s_k.momentum.values()])
    assert rel_err(y_k, y_a) <= 1e-2
    for name in s_a.weights:
        assert rel_err(s_k.weights[name], s_a.weights[name]) <= 1e-2
        assert rel_err(s_k.momentum[name], s_a.momentum[name]) <= 2e-2
    for name, g in g_a.items():
        if g is not None:
            assert rel_err(g_k[name], g) <= 2e-2, name


def test_causal_conv_fast_equals_naive_and_streams():
    from hercules.ops import causal_conv1d, causal_conv1d_naive

    torch.manual_seed(0)
    x = torch.randn(2, 11, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    fast, cache_fast = causal_conv1d(x, weight)
    naive, cache_naive = causal_conv1d_naive(x, weight)
    torch.testing.assert_close(fast, naive)
    torch.testing.assert_close(cache_fast, cache_naive)
    grads_fast = torch.autograd.grad(fast.square().sum(), [x, weight], retain_graph=True)
    grads_naive = torch.autograd.grad(naive.square().sum(), [x, weight])
    for a, b in zip(grads_fast, grads_naive, strict=True):
        torch.testing.assert_close(a, b)
    first, cache = causal_conv1d(x[:, :5], weight)
    second, _ = causal_conv1d(x[:, 5:], weight, cache)
    streamed = torch.cat([first, second], 1)
    torch.testing.assert_close(streamed, fast)
    # gradients flow back through the carried cache as through the whole sequence
    grads_streamed = torch.autograd.grad(streamed.square().sum(), [x, weight])
    for a, b in zip(grads_streamed, grads_naive, strict=True):
        torch.testing.assert_close(a, b)
    # causal: output t depends on inputs t-3..t only
    (grad_x,) = torch.autograd.grad(fast[:, 6].sum(), x)
    assert torch.equal(grad_x[:, 7:], torch.zeros_like(grad_x[:, 7:])) and torch.equal(
        grad_x[:, :3], torch.zeros_like(grad_x[:, :3])
    )


@pytest.mark.parametrize("length", [1, 2, 7, 16, 33])
def test_doubling_cumprod_equals_cumprod_with_zeros(length):
    """The scan used on CUDA (its backward needs no host synchronisation) against ``torch.cumprod``."""
    from hercules.ops.memory_update_chunked import doubling_cumprod

    torch.manual_seed(length)
    x = torch.rand(3, 2, length, dtype=torch.float64)
    x[0, 0, length // 2] = 0.0  # one zero
    x[1, 1, ::3] = 0.0  # several
    x.requires_grad_(True)
    cotangent = torch.randn(3, 2, length, dtype=torch.float64)
    fast, ref = doubling_cumprod(x), torch.cumprod(x, dim=-1)
    torch.testing.assert_close(fast, ref)
    (g_fast,) = torch.autograd.grad(fast, x, cotangent)
    (g_ref,) = torch.autograd.grad(ref, x, cotangent)
    torch.testing.assert_close(g_fast, g_ref)


@pytest.mark.parametrize("length", [1, 2, 7, 16, 33])
def test_linear_scan_equals_the_recurrence_with_zeros(length):
    """The doubling scan behind the chunk coefficients against the recurrence ``h_t = a_t h_{t−1} + b_t`` run
    step by step, in values and gradients, with zeros among the factors."""
    from hercules.ops.memory_update_chunked import linear_scan

    torch.manual_seed(length)
    a, b = torch.rand(3, 2, length, dtype=torch.float64), torch.randn(3, 2, length, dtype=torch.float64)
    a[0, 0, length // 2] = 0.0
    a[1, 1, ::3] = 0.0
    a.requires_grad_(True), b.requires_grad_(True)
    h, steps = torch.zeros_like(b[..., 0]), []
    for t in range(length):
        h = a[..., t] * h + b[..., t]
        steps.append(h)
    reference, fast = torch.stack(steps, -1), linear_scan(a, b)
    torch.testing.assert_close(fast, reference)
    cotangent = torch.randn_like(reference)
    grads = [
        torch.autograd.grad(out, [a, b], cotangent, allow_unused=True, materialize_grads=True)  # a: unused at n = 1
        for out in (fast, reference)
    ]
    for g_fast, g_ref in zip(*grads, strict=True):
        torch.testing.assert_close(g_fast, g_ref)


@pytest.mark.slow
def test_compiled_chunk_step_equals_eager():
    eager, _ = memory_pair(dim=8, chunk_size=4, conv_kernel=0)
    torch.manual_seed(0)
    compiled = type(eager)(8, eager.config.model_copy(update={"compile": True}))
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(2, 10, 8)
    y_e, _, g_e = _run(eager, x)
    y_c, _, g_c = _run(compiled, x)
    assert rel_err(y_c, y_e) <= 1e-5
    assert all(rel_err(g_c[n], g) <= 1e-5 for n, g in g_e.items() if g is not None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_fast_on_cuda_equals_reference_on_cpu(compile, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # the conv would otherwise round to TF32
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    fast, naive = memory_pair(heads=2, chunk_size=4, compile=compile)
    x = torch.randn(2, 21, 16)
    y_n, s_n, g_n = _run(naive, x)
    y_f, s_f, g_f = _run(fast.cuda(), x.cuda())
    assert rel_err(y_f.cpu(), y_n) <= 1e-5
    assert all(rel_err(s_f.weights[n].cpu(), w) <= 1e-5 for n, w in s_n.weights.items())
    assert all(rel_err(g_f[n].cpu(), g) <= 1e-5 for n, g in g_n.items() if g is not None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_replay_equals_reference_on_cpu(monkeypatch):
    """The captured forward and backward, replayed on new inputs, against the naive reference."""
    from hercules.memory.cuda_graphs import capture_memory

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    fast, naive = memory_pair(heads=2, chunk_size=4)
    fast = fast.cuda()
    run = capture_memory(fast, torch.randn(2, 21, 16, device="cuda"))
    for _ in range(2):  # each replay reads its own input
        x = torch.randn(2, 21, 16)
        y_n, s_n, g_n = _run(naive, x)
        y_g, s_g = run(x.cuda())
        loss = y_g.pow(2).sum() + sum(w.pow(2).sum() for w in s_g.weights.values())
        grads = torch.autograd.grad(loss, list(fast.parameters()), allow_unused=True)
        assert rel_err(y_g.cpu(), y_n) <= 1e-5
        assert all(rel_err(s_g.weights[n].cpu(), w) <= 1e-5 for n, w in s_n.weights.items())
        for (name, _), g in zip(fast.named_parameters(), grads, strict=True):
            assert rel_err(g.cpu(), g_n[name]) <= 1e-5, name


def test_cuda_graph_capture_names_what_it_needs():
    from hercules.memory.cuda_graphs import capture_memory

    fast, _ = memory_pair()
    with pytest.raises(ValueError, match="needs a CUDA tensor"):
        capture_memory(fast, torch.randn(1, 8, 16))


def test_cuda_graphs_option_is_eager_where_it_does_not_apply():
    """On CPU, in eval mode or with a carried state, ``cuda_graphs=True`` runs the eager path, bit for bit."""
    plain, _ = memory_pair(heads=2, chunk_size=4)
    graphs = type(plain)(16, plain.config.model_copy(update={"cuda_graphs": True}))
    graphs.load_state_dict(plain.state_dict())
    x = torch.randn(2, 9, 16)
    y_p, s_p, g_p = _run(plain, x)
    y_g, s_g, g_g = _run(graphs, x)
    assert torch.equal(y_g, y_p) and not graphs._graphs
    assert all(torch.equal(g_g[n], g) for n, g in g_p.items() if g is not None)


def test_copies_start_without_captured_graphs():
    import copy

    memory, _ = memory_pair()
    memory._graphs[("a key",)] = lambda x: x  # stands for a capture, bound to the original's parameters
    clone = copy.deepcopy(memory)
    assert clone._graphs == {} and memory._graphs
    x = torch.randn(1, 5, 16)
    assert torch.equal(clone(x)[0], memory(x)[0])


def test_captures_are_keyed_by_input_and_parameter_storage(monkeypatch):
    """One capture per input signature; parameters moved or replaced (here by a dtype change) drop every
    capture, since a graph would read their old storage. The capture itself is stubbed (it needs CUDA)."""
    import hercules.memory.cuda_graphs as cuda_graphs

    captured = []

    def fake_capture(memory, example):
        captured.append((tuple(example.shape), example.dtype))
        return memory.forward_eager

    monkeypatch.setattr(cuda_graphs, "capture_memory", fake_capture)
    memory, _ = memory_pair(cuda_graphs=True)
    monkeypatch.setattr(type(memory), "_graphs_apply", lambda self, x: True)
    x = torch.randn(1, 8, 16)
    y, _ = memory(x)
    assert torch.equal(memory(x)[0], y) and captured == [((1, 8, 16), torch.float32)]
    memory(torch.randn(1, 12, 16))
    assert len(captured) == 2 and len(memory._graphs) == 2
    memory.to(torch.float64)
    memory(x.double())
    assert captured[-1] == ((1, 8, 16), torch.float64) and len(memory._graphs) == 1
    memory(x.double(), memory.init_state(1, x.device))  # a carried state runs eagerly, capturing nothing
    assert len(captured) == 3
