"""A chunk of a SwiGLU memory ``M(x) = [x +] (silu(x W_gate) ⊙ x W_up) W_down`` in closed form, and its backward
written out: the :class:`~hercules.ops.chunk_scan.ChunkKernel` of the ``swiglu`` memory model.

Its reference is autograd through :func:`swiglu_chunk_forward` (a test holds the backward to it in float64), and
:func:`~hercules.ops.memory_update_naive.memory_update_naive` for the forward's gradient sums.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.functional import silu

from hercules.ops.activations import silu_grad, silu_second
from hercules.ops.mlp_chunk import weighted_outer, weighted_outer_adjoint


def swiglu_chunk_forward(
    weights: dict[str, Tensor], q: Tensor, k: Tensor, v: Tensor, token_weights: Tensor, residual: bool
) -> tuple[Tensor, dict[str, Tensor], tuple[Tensor, ...]]:
    """Reads ``M(q)`` ``[N, n, d]``, the weighted gradient sums ``name → [N, m, ...]`` (``gate``, ``up``,
    ``down``), and for :func:`swiglu_chunk_backward` the gate and up pre-activations and the keys' error."""
    n = q.shape[1]
    x = torch.cat([q, k], dim=1)
    gate, up = x @ weights["gate"], x @ weights["up"]
    act = silu(gate)
    hidden = act * up
    out = torch.baddbmm(x, hidden, weights["down"]) if residual else hidden @ weights["down"]
    token_weights = 2 * token_weights  # ∂‖out − v‖²/∂out = 2 (out − v), the 2 on the small tensor
    delta = out[:, n:] - v
    d_hidden = delta @ weights["down"].transpose(-1, -2)
    gate_err = d_hidden * up[:, n:] * silu_grad(gate[:, n:])
    up_err = d_hidden * act[:, n:]
    keys = x[:, n:]
    grads = {
        "down": weighted_outer(hidden[:, n:], token_weights, delta),
        "gate": weighted_outer(keys, token_weights, gate_err),
        "up": weighted_outer(keys, token_weights, up_err),
    }
    return out[:, :n], grads, (gate, up, delta)


def swiglu_gradient_norms(weights: dict[str, Tensor], k: Tensor, v: Tensor, residual: bool) -> Tensor:
    """``[N, n]`` norms of the keys' per-token gradients over ``gate``, ``up`` and ``down`` (each an outer product
    of a layer input and an error, so its squared norm is the product of theirs)."""
    gate, up = k @ weights["gate"], k @ weights["up"]
    act = silu(gate)
    hidden = act * up
    out = torch.baddbmm(k, hidden, weights["down"]) if residual else hidden @ weights["down"]
    delta = 2 * (out - v)
    d_hidden = delta @ weights["down"].transpose(-1, -2)
    keys = k.pow(2).sum(-1)
    total = hidden.pow(2).sum(-1) * delta.pow(2).sum(-1)
    total = total + keys * (d_hidden * up * silu_grad(gate)).pow(2).sum(-1)
    total = total + keys * (d_hidden * act).pow(2).sum(-1)
    return total.sqrt()


def swiglu_chunk_backward(
    weights: dict[str, Tensor], q: Tensor, k: Tensor, v: Tensor, token_weights: Tensor, saved: tuple[Tensor, ...],
    grad_y: Tensor, grad_grads: dict[str, Tensor], residual: bool,
) -> tuple[dict[str, Tensor], Tensor, Tensor, Tensor, Tensor]:
    """The vector-Jacobian product of :func:`swiglu_chunk_forward`.

    With ``r = δ W_downᵀ`` (the error at the hidden layer, keys only): the gate's error is
    ``silu'(g) ⊙ r ⊙ up`` and the up projection's ``r ⊙ silu(g)``; their adjoints reach ``r`` (then ``δ`` and
    ``W_down``), the keys' ``g`` (``silu''`` enters here) and ``up``, before an ordinary backward pass over
    queries and keys.
    """
    n = q.shape[1]
    gate, up, delta = saved
    x = torch.cat([q, k], dim=1)
    act = silu(gate)
    hidden = act * up
    g_k, up_k, act_k = gate[:, n:], up[:, n:], act[:, n:]
    silu_grad_k = silu_grad(g_k)
    r = delta @ weights["down"].transpose(-1, -2)
    gate_err, up_err = r * up_k * silu_grad_k, r * act_k
    u = (2 * token_weights).transpose(1, 2).unsqueeze(-1)  # [N, n, m, 1]
    d_hidden_k, d_delta, d_u = weighted_outer_adjoint(hidden[:, n:], u, delta, grad_grads["down"])
    d_keys, d_gerr, d_u_gate = weighted_outer_adjoint(x[:, n:], u, gate_err, grad_grads["gate"])
    d_keys_up, d_uerr, d_u_up = weighted_outer_adjoint(x[:, n:], u, up_err, grad_grads["up"])
    # through gate_err = r ⊙ up ⊙ silu'(g) and up_err = r ⊙ silu(g)
    d_r = d_gerr * up_k * silu_grad_k + d_uerr * act_k
    d_gate_k = d_gerr * r * up_k * silu_second(g_k) + d_uerr * r * silu_grad_k
    d_up_k = d_gerr * r * silu_grad_k
    d_delta = d_delta + d_r @ weights["down"]
    d_down = d_r.transpose(-1, -2) @ delta
    # the network over queries and keys, with the keys' extra gradients added on their half
    d_out = torch.cat([grad_y, d_delta], dim=1)
    d_down = d_down + hidden.transpose(-1, -2) @ d_out
    d_hidden = d_out @ weights["down"].transpose(-1, -2)
    d_hidden[:, n:] += d_hidden_k
    d_up = d_hidden * act
    d_up[:, n:] += d_up_k
    d_gate = torch.ops.aten.silu_backward(d_hidden * up, gate)
    d_gate[:, n:] += d_gate_k
    d_x = d_gate @ weights["gate"].transpose(-1, -2) + d_up @ weights["up"].transpose(-1, -2)
    if residual:
        d_x = d_x + d_out
    d_x[:, n:] += d_keys + d_keys_up
    grads = {"gate": x.transpose(-1, -2) @ d_gate, "up": x.transpose(-1, -2) @ d_up, "down": d_down}
    return grads, d_x[:, :n], d_x[:, n:], -d_delta, 2 * (d_u + d_u_gate + d_u_up).transpose(1, 2)
