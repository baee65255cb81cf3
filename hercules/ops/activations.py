"""The hidden nonlinearities of the built-in memory models, with their first and second derivatives (which the
closed-form chunk steps and their hand-written backward passes need)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def silu_grad(z: Tensor) -> Tensor:
    """σ'(z) of SiLU. Written out because aten's ``silu_backward`` has no derivative of its own, which the outer
    backward through a closed-form gradient needs."""
    s = torch.sigmoid(z)
    return s * (1 + z * (1 - s))


ACTIVATIONS = {"gelu": nn.functional.gelu, "silu": nn.functional.silu, "relu": torch.relu, "tanh": torch.tanh}
"""Activations of the built-in memory models; :data:`ACTIVATION_GRADS` maps ``(grad, z)`` to ``grad ⊙ σ'(z)``."""

ACTIVATION_GRADS = {
    # ``grad ⊙ σ'(z)`` in one differentiable kernel each (aten's own backward ops have derivatives too)
    "gelu": lambda grad, z: torch.ops.aten.gelu_backward(grad, z),
    "silu": lambda grad, z: grad * silu_grad(z),
    "relu": lambda grad, z: grad * (z > 0).to(z.dtype),
    "tanh": lambda grad, z: grad * (1 - torch.tanh(z).square()),
}


def _gelu_second(grad: Tensor, z: Tensor) -> Tensor:
    # σ(z) = z Φ(z): σ'' = φ(z) (2 − z²)
    return grad * torch.exp(-0.5 * z.square()) * (2 - z.square()) / math.sqrt(2 * math.pi)


def silu_second(z: Tensor) -> Tensor:
    """σ''(z) of SiLU: with s the sigmoid, s (1 − s) (2 + z (1 − 2s))."""
    s = torch.sigmoid(z)
    return s * (1 - s) * (2 + z * (1 - 2 * s))


ACTIVATION_SECONDS = {
    # ``grad ⊙ σ''(z)``, for backward passes written out by hand (:class:`~hercules.ops.chunk_scan.ChunkKernel`)
    "gelu": _gelu_second,
    "silu": lambda grad, z: grad * silu_second(z),
    "relu": lambda grad, z: torch.zeros_like(grad),
    "tanh": lambda grad, z: grad * -2 * torch.tanh(z) * (1 - torch.tanh(z).square()),
}
