"""Data: bAbI, BABILong (generated, procedural, hub, local), prompts, and FineWeb-Edu packed blocks.

Examples:
    >>> from hercules.data import BabilongData, load_babilong
    >>> BabilongData().source
    'procedural'
"""

from hercules.lazy import lazy_package

# Imported on first use: importing a config module of this package does not import torch.
_EXPORTS = {
    "BabiSample": "hercules.data.babi",
    "BabilongData": "hercules.data.loaders",
    "BabilongGenerator": "hercules.data.babilong",
    "BabilongSample": "hercules.data.babilong",
    "HubUnavailableError": "hercules.data.hub",
    "LENGTHS": "hercules.data.babilong",
    "SentenceSource": "hercules.data.babilong",
    "TextData": "hercules.data.fineweb",
    "collate_sft": "hercules.data.sft",
    "encode_prompts": "hercules.data.prompts",
    "format_for_model": "hercules.data.prompts",
    "length_tokens": "hercules.data.babilong",
    "load_babi_task": "hercules.data.babi",
    "load_babilong": "hercules.data.loaders",
    "load_text_blocks": "hercules.data.fineweb",
    "pack_blocks": "hercules.data.fineweb",
    "parse_babi": "hercules.data.babi",
    "render_prompt": "hercules.data.prompts",
    "sft_example": "hercules.data.sft",
    "sft_examples": "hercules.data.sft",
    "write_local": "hercules.data.loaders",
}
lazy_package(__name__, _EXPORTS)

__all__ = [
    "LENGTHS",
    "BabiSample",
    "BabilongData",
    "BabilongGenerator",
    "BabilongSample",
    "HubUnavailableError",
    "SentenceSource",
    "TextData",
    "collate_sft",
    "encode_prompts",
    "format_for_model",
    "length_tokens",
    "load_babi_task",
    "load_babilong",
    "load_text_blocks",
    "pack_blocks",
    "parse_babi",
    "render_prompt",
    "sft_example",
    "sft_examples",
    "write_local",
]
