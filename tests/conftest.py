"""Shared pytest fixtures (keep this file small; fixtures of one area live in that area's test files)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def byte_tok():
    """The offline byte-level tokenizer (259 tokens)."""
    from hercules.backbones.tokenizer import byte_tokenizer

    return byte_tokenizer()


@pytest.fixture
def tiny_lm():
    """Factory for tiny seeded fp32 models: ``tiny_lm("llama", num_hidden_layers=3)``."""
    from hercules.backbones.tiny import tiny_model

    return tiny_model
