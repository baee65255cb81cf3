"""Data: bAbI, BABILong (generated, procedural, hub, local), prompts, and FineWeb-Edu packed blocks.

Examples:
    >>> from hercules.data import BabilongData, load_babilong
    >>> BabilongData().source
    'procedural'
"""

from hercules.data.babi import BabiSample, load_babi_task, parse_babi
from hercules.data.babilong import LENGTHS, BabilongGenerator, BabilongSample, SentenceSource, length_tokens
from hercules.data.fineweb import TextData, load_text_blocks, pack_blocks
from hercules.data.hub import HubUnavailableError
from hercules.data.loaders import BabilongData, load_babilong, write_local
from hercules.data.prompts import encode_prompts, format_for_model, render_prompt
from hercules.data.sft import collate_sft, sft_example, sft_examples

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
