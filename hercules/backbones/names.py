"""Backbone names that recipes can check without importing torch or transformers."""

TINY_FAMILIES = ("llama", "qwen2", "qwen3", "gemma3")
"""Families of the tiny in-process models (:mod:`hercules.backbones.tiny`), named ``tiny:<family>``."""
