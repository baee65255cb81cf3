"""Backbones: offline tokenizer, tiny in-process models, pretrained loaders and the adapter table."""
