"""A chunk of an MLP memory ``M(x) = [x +] σ(… σ(x W_0) …) W_{L−1}`` in closed form: the reads of the queries, the
weighted sums of the keys' per-token gradients, and the backward of both written out by hand.

The forward and backward of a :class:`~hercules.ops.chunk_scan.ChunkKernel` for the ``mlp`` (any depth)
and ``linear`` (depth 1, no residual) memory models. Their reference is autograd through :func:`mlp_chunk_forward`
(a test holds the backward to it in float64), and :func:`~hercules.ops.memory_update_naive.memory_update_naive`
for the forward's gradient sums.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor


class Activation(NamedTuple):
    """A hidden nonlinearity σ: ``fn(z)``, and ``grad(g, z) = g ⊙ σ'(z)``, ``second(g, z) = g ⊙ σ''(z)``."""

    fn: Callable[[Tensor], Tensor]
    grad: Callable[[Tensor, Tensor], Tensor]
    second: Callable[[Tensor, Tensor], Tensor]


def weighted_outer(x: Tensor, token_weights: Tensor, delta: Tensor) -> Tensor:
    """``Σ_t w_{m,t} x_t^T δ_t``: the weighted per-token gradients of ``x @ W``; ``[N, n, i]``, ``[N, m, n]``,
    ``[N, n, o]`` → ``[N, m, i, o]``. One batched matrix product for all weightings (the weighted inputs stacked
    as ``[N, m·i, n]``), and no per-token ``[i, o]``."""
    weighted = x.transpose(-1, -2).unsqueeze(1) * token_weights.unsqueeze(-2)  # [N, m, i, n]
    return (weighted.flatten(1, 2) @ delta).unflatten(1, (token_weights.shape[1], -1))


def weighted_outer_adjoint(x: Tensor, u: Tensor, delta: Tensor, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The backward of :func:`weighted_outer`, ``G[m] = xᵀ diag(u_m) δ``, with the token weights ``u`` laid out as
    ``[N, n, m, 1]``: from the gradient ``[N, m, i, o]`` of ``G``, those of ``x`` ``[N, n, i]``, ``δ`` ``[N, n, o]``
    and ``u`` ``[N, n, m]``. Two products, each for all ``m`` at once."""
    m = grad.shape[1]
    # Σ_o δ[t, o] ∂G[m, :, o] → [N, n, m, i]
    back = (delta @ grad.permute(0, 3, 1, 2).flatten(2)).unflatten(-1, (m, -1))
    # Σ_m u_m[t] x[t] ∂G[m]: the weighted inputs side by side, one contraction over (m, i)
    d_delta = (x.unsqueeze(2) * u).flatten(2) @ grad.flatten(1, 2)
    return (back * u).sum(2), d_delta, (back * x.unsqueeze(2)).sum(-1)


def mlp_chunk_forward(
    weights: list[Tensor], q: Tensor, k: Tensor, v: Tensor, token_weights: Tensor, act: Activation | None,
    residual: bool,
) -> tuple[Tensor, list[Tensor], tuple[Tensor, ...]]:
    """Reads ``M(q)`` ``[N, n, d]``, the weighted gradient sums ``[N, m, ...]`` per weight, and for
    :func:`mlp_chunk_backward` the pre-activations (queries and keys) and the keys' back-propagated errors.

    One forward pass over queries and keys together, then backpropagation by hand. What is cheap to recompute
    (the activations, the errors' products with the weights) is not kept: every chunk's saved tensors are held
    until the backward.
    """
    n, depth = q.shape[1], len(weights)
    h, inputs, pre = mlp_layers(weights, torch.cat([q, k], dim=1), act, residual)
    # ∂‖out − v‖²/∂out = 2 (out − v): the 2 goes on the [N, m, n] token weights, not on a [N, n, d] tensor
    token_weights = 2 * token_weights
    delta = h[:, n:] - v
    deltas, grads = [delta] * depth, [None] * depth
    for i in reversed(range(depth)):
        deltas[i] = delta
        grads[i] = weighted_outer(inputs[i][:, n:], token_weights, delta)
        if i > 0:
            delta = act.grad(delta @ weights[i].transpose(-1, -2), pre[i - 1][:, n:])
    return h[:, :n], grads, (*pre, *deltas)


def mlp_layers(
    weights: list[Tensor], x: Tensor, act: Activation | None, residual: bool
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """The MLP's forward pass over ``x`` ``[N, n, d]``: its output, each weight's input ``a_i`` and each hidden
    activation's pre-activation (what the closed-form gradients and their backward need)."""
    depth = len(weights)
    inputs, pre, h = [x], [], x
    for i, w in enumerate(weights):
        if i > 0:
            pre.append(h)
            h = act.fn(h)
            inputs.append(h)
        h = torch.baddbmm(x, h, w) if residual and i == depth - 1 else h @ w
    return h, inputs, pre


def mlp_gradient_norms(weights: list[Tensor], k: Tensor, v: Tensor, act: Activation | None, residual: bool) -> Tensor:
    """``[N, n]`` norms of the keys' per-token gradients ``∇_W ‖M(k_t) − v_t‖²`` over every weight: the gradient of
    ``W_i`` is the outer product ``a_i,t ⊗ 2δ_i,t``, so its squared norm is ``‖a_i,t‖² ‖2δ_i,t‖²``."""
    depth = len(weights)
    h, inputs, pre = mlp_layers(weights, k, act, residual)
    delta, total = 2 * (h - v), 0
    for i in reversed(range(depth)):
        total = total + inputs[i].pow(2).sum(-1) * delta.pow(2).sum(-1)
        if i > 0:
            delta = act.grad(delta @ weights[i].transpose(-1, -2), pre[i - 1])
    return total.sqrt()


def mlp_chunk_backward(
    weights: list[Tensor], q: Tensor, k: Tensor, v: Tensor, token_weights: Tensor, saved: tuple[Tensor, ...],
    grad_y: Tensor, grad_grads: list[Tensor], act: Activation | None, residual: bool,
) -> tuple[list[Tensor], Tensor, Tensor, Tensor, Tensor]:
    """The vector-Jacobian product of :func:`mlp_chunk_forward`: gradients of the weights, q, k, v and the token
    weights, from those of the reads (``grad_y``) and of the gradient sums (``grad_grads``).

    Forward, with ``u = 2 w`` and ``a_i`` the input of weight ``W_i`` (``a_0 = [q; k]``): ``G_i[m] = a_i,kᵀ
    diag(u_m) δ_i``, ``δ_{L−1} = M(k) − v`` and ``δ_{i−1} = σ'(z_i,k) ⊙ (δ_i W_iᵀ)``. Backward: first the
    gradient sums' adjoints (into the keys' ``a_i``, the ``δ_i`` and ``u``), then down the ``δ`` recursion
    (σ'' enters here), then an ordinary backward pass of the network over queries and keys.
    """
    n, depth = q.shape[1], len(weights)
    pre, deltas = saved[: depth - 1], saved[depth - 1 :]
    inputs = [torch.cat([q, k], dim=1), *(act.fn(z) for z in pre)]
    products = [None, *(deltas[i] @ weights[i].transpose(-1, -2) for i in range(1, depth))]
    u = (2 * token_weights).transpose(1, 2).unsqueeze(-1)  # [N, n, m, 1]
    d_inputs_k, d_deltas, d_u = [], [], 0
    for i in range(depth):
        d_input, d_delta, d_ui = weighted_outer_adjoint(inputs[i][:, n:], u, deltas[i], grad_grads[i])
        d_inputs_k.append(d_input), d_deltas.append(d_delta)
        d_u = d_u + d_ui
    d_weights, d_pre_k = [0] * depth, [None] * depth
    for i in range(1, depth):  # δ_{i−1} = σ'(z_i) ⊙ (δ_i W_iᵀ), from the last δ formed to the first
        z = pre[i - 1][:, n:]
        d_product = act.grad(d_deltas[i - 1], z)
        d_pre_k[i] = act.second(d_deltas[i - 1] * products[i], z)
        d_deltas[i] = d_deltas[i] + d_product @ weights[i]
        d_weights[i] = d_product.transpose(-1, -2) @ deltas[i]
    d_out = torch.cat([grad_y, d_deltas[-1]], dim=1)
    d_x = d_out if residual else 0
    for i in reversed(range(depth)):
        d_weights[i] = d_weights[i] + inputs[i].transpose(-1, -2) @ d_out
        d_in = d_out @ weights[i].transpose(-1, -2)
        d_in[:, n:] += d_inputs_k[i]
        if i == 0:
            d_x = d_x + d_in
            break
        d_out = act.grad(d_in, pre[i - 1])
        d_out[:, n:] += d_pre_k[i]
    return d_weights, d_x[:, :n], d_x[:, n:], -d_deltas[-1], 2 * d_u.transpose(1, 2)
