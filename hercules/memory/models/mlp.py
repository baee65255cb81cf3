"""``mlp``: a residual multi-layer perceptron memory, ``M(x) = x + W_L σ(… σ(W_1 x))``."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from hercules.memory.models.base import (
    ACTIVATION_GRADS,
    ACTIVATION_SECONDS,
    ACTIVATIONS,
    MemoryModel,
    register_memory_model,
    weighted_outer,
)
from hercules.ops.memory_update_chunked import ChunkKernel
from hercules.registry import PluginConfig


class MLPMemoryConfig(PluginConfig):
    """A residual MLP memory (the Titans default)."""

    kind: Literal["mlp"] = "mlp"
    depth: int = Field(2, ge=1, description="Number of weight matrices; 1 is a residual linear map.")
    expansion: float = Field(2.0, gt=0, description="Hidden width as a multiple of the head size.")
    activation: Literal["gelu", "silu", "relu", "tanh"] = Field("gelu", description="Hidden nonlinearity.")
    residual: bool = Field(True, description="Add the input to the output (M(x) = x + MLP(x)).")


@register_memory_model("mlp", MLPMemoryConfig)
class MLPMemory(MemoryModel):
    """Residual MLP memory. Initial weights: N(0, 1/fan_in) per matrix (variance-preserving).

    Examples:
        >>> import torch
        >>> m = MLPMemory(MLPMemoryConfig(depth=2), dim=8, heads=2)
        >>> m(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, config: MLPMemoryConfig, dim: int, heads: int) -> None:
        super().__init__(config, dim, heads)
        hidden = max(1, round(dim * config.expansion))
        sizes = [dim] + [hidden] * (config.depth - 1) + [dim]
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            self.add_weight(f"w{i}", fan_in, fan_out)
        self.act = ACTIVATIONS[config.activation]
        self.act_grad = ACTIVATION_GRADS[config.activation]
        self.act_second = ACTIVATION_SECONDS[config.activation]

    def functional(self, weights: dict[str, Tensor], x: Tensor) -> Tensor:
        h = x
        for i in range(self.config.depth):
            if i > 0:
                h = self.act(h)
            h = h @ weights[f"w{i}"]
        return x + h if self.config.residual else h

    @property
    def chunk_kernel(self) -> ChunkKernel | None:
        # an instance-level read_and_gradients (e.g. compiled by MemoryConfig(compile=True)) takes precedence
        return None if "read_and_gradients" in self.__dict__ else ChunkKernel(self.chunk_forward, self.chunk_backward)

    def read_and_gradients(self, weights, q, k, v, token_weights):
        """Closed form: one forward over queries and keys together, then backpropagation by hand."""
        y, grads, _ = self.chunk_forward(weights, q, k, v, token_weights)
        return y, grads

    def chunk_forward(self, weights, q, k, v, token_weights):
        """:meth:`read_and_gradients` and, for :meth:`chunk_backward`, the pre-activations (queries and keys) and
        the back-propagated errors of the keys. What is cheap to recompute from them (the activations, the errors'
        products with the weights) is not kept: the saved tensors of every chunk are held until the backward."""
        n, depth = q.shape[1], self.config.depth
        x = torch.cat([q, k], dim=1)
        inputs, pre = [x], []  # per layer: its input; per hidden activation: its pre-activation
        h = x
        for i in range(depth):
            if i > 0:
                pre.append(h)
                h = self.act(h)
                inputs.append(h)
            residual = self.config.residual and i == depth - 1
            h = torch.baddbmm(x, h, weights[f"w{i}"]) if residual else h @ weights[f"w{i}"]
        # ∂‖out − v‖²/∂out = 2 (out − v): the 2 goes on the [N, m, n] token weights, not on a [N, n, d] tensor
        token_weights = 2 * token_weights
        delta = h[:, n:] - v
        deltas, grads = [delta] * depth, {}
        for i in reversed(range(depth)):
            deltas[i] = delta
            grads[f"w{i}"] = weighted_outer(inputs[i][:, n:], token_weights, delta)
            if i > 0:
                delta = self.act_grad(delta @ weights[f"w{i}"].transpose(-1, -2), pre[i - 1][:, n:])
        return h[:, :n], grads, (*pre, *deltas)

    def chunk_backward(self, weights, q, k, v, token_weights, saved, grad_y, grad_grads):
        """The vector-Jacobian product of :meth:`chunk_forward` (its backward pass, by hand).

        Forward, with ``u = 2 w`` and ``a_i`` the input of weight ``W_i`` (``a_0 = [q; k]``): ``G_i[m] = a_i,kᵀ
        diag(u_m) δ_i``, ``δ_{L−1} = M(k) − v`` and ``δ_{i−1} = σ'(z_i,k) ⊙ (δ_i W_iᵀ)``. Backward: first the
        gradient sums' adjoints (into the keys' ``a_i``, the ``δ_i`` and ``u``), then down the ``δ`` recursion
        (σ'' enters here), then an ordinary backward pass of the network over queries and keys.
        """
        n, depth, m = q.shape[1], self.config.depth, token_weights.shape[1]
        W = [weights[f"w{i}"] for i in range(depth)]
        pre, deltas = saved[: depth - 1], saved[depth - 1 :]
        inputs = [torch.cat([q, k], dim=1), *(self.act(z) for z in pre)]
        products = [None, *(deltas[i] @ W[i].transpose(-1, -2) for i in range(1, depth))]
        u = (2 * token_weights).transpose(1, 2).unsqueeze(-1)  # [N, n, m, 1]
        d_inputs_k, d_deltas, d_u = [], [], 0
        for i in range(depth):
            dG, a_k, delta = grad_grads[f"w{i}"], inputs[i][:, n:], deltas[i]
            # Σ_o δ[t, o] ∂G[m, :, o], one product for all m → [N, n, m, in]
            back = (delta @ dG.permute(0, 3, 1, 2).flatten(2)).unflatten(-1, (m, -1))
            d_inputs_k.append((back * u).sum(2))
            d_u = d_u + (back * a_k.unsqueeze(2)).sum(-1)
            # Σ_m u_m[t] a[t] ∂G[m]: the weighted inputs side by side, one contraction over (m, in)
            d_deltas.append((a_k.unsqueeze(2) * u).flatten(2) @ dG.flatten(1, 2))
        d_weights, d_pre_k = [0] * depth, [None] * depth
        for i in range(1, depth):  # δ_{i−1} = σ'(z_i) ⊙ (δ_i W_iᵀ), from the last δ formed to the first
            z = pre[i - 1][:, n:]
            d_product = self.act_grad(d_deltas[i - 1], z)
            d_pre_k[i] = self.act_second(d_deltas[i - 1] * products[i], z)
            d_deltas[i] = d_deltas[i] + d_product @ W[i]
            d_weights[i] = d_product.transpose(-1, -2) @ deltas[i]
        d_out = torch.cat([grad_y, d_deltas[-1]], dim=1)
        d_x = d_out if self.config.residual else 0
        for i in reversed(range(depth)):
            d_weights[i] = d_weights[i] + inputs[i].transpose(-1, -2) @ d_out
            d_in = d_out @ W[i].transpose(-1, -2)
            d_in[:, n:] += d_inputs_k[i]
            if i == 0:
                d_x = d_x + d_in
                break
            d_out = self.act_grad(d_in, pre[i - 1])
            d_out[:, n:] += d_pre_k[i]
        grads = {f"w{i}": d for i, d in enumerate(d_weights)}
        return grads, d_x[:, :n], d_x[:, n:], -d_deltas[-1], 2 * d_u.transpose(1, 2)
