"""Data: bAbI, BABILong (generated, procedural, hub, local), prompts, and FineWeb-Edu packed blocks.

Example:
    >>> from hercules.data import BabilongData, load_babilong
    >>> BabilongData().source
    'procedural'
"""

from hercules.data.babi import BabiSample, load_babi_task, parse_babi
from hercules.data.babilong import LENGTHS, BabilongGenerator, BabilongSample, SentenceSource, length_tokens
from hercules.data.hub import HubUnavailableError
from hercules.data.loaders import BabilongData, load_babilong, write_local
from hercules.data.prompts import format_for_model, render_prompt

__all__ = [
    "LENGTHS",
    "BabiSample",
    "BabilongData",
    "BabilongGenerator",
    "BabilongSample",
    "HubUnavailableError",
    "SentenceSource",
    "format_for_model",
    "length_tokens",
    "load_babi_task",
    "load_babilong",
    "parse_babi",
    "render_prompt",
    "write_local",
]
