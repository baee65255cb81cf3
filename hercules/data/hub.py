"""Fail-fast access to the Hugging Face hub for datasets.

With no network, ``datasets.load_dataset`` can spend minutes in retries before failing with an error that does not
say what to do. Every hub path in :mod:`hercules.data` first calls :func:`require_hub`, which fails within a few
seconds with a :class:`HubUnavailableError` saying how to run the same thing offline.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


class HubUnavailableError(RuntimeError):
    """The hub cannot be reached (offline mode set, or no network); the message says how to run offline."""


def _offline_flag() -> str | None:
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


def hub_endpoint() -> str:
    """The hub's base URL (``HF_ENDPOINT`` or https://huggingface.co)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def require_hub(what: str, offline_hint: str, timeout: float = 3.0) -> None:
    """Raise :class:`HubUnavailableError` quickly unless the hub is reachable.

    Args:
        what: what was asked for, e.g. ``"dataset RMT-team/babilong"``.
        offline_hint: how to get the same thing without the hub (shown in the error).
        timeout: seconds to wait for a TCP connection to the hub.
    """
    flag = _offline_flag()
    if flag is not None:
        raise HubUnavailableError(
            f"cannot load {what}: {flag} is set (offline mode). To run offline: {offline_hint}"
        )
    url = urlparse(hub_endpoint())
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise HubUnavailableError(
            f"cannot load {what}: the hub at {host}:{port} is unreachable ({error}). To run offline: {offline_hint}"
        ) from error


def load_hub_dataset(path: str, offline_hint: str, **kwargs: Any) -> Any:
    """``datasets.load_dataset(path, **kwargs)`` after :func:`require_hub`, with hub errors turned into ours."""
    import datasets

    require_hub(f"dataset {path}", offline_hint)
    log.info("loading %s %s from the hub", path, kwargs)
    try:
        return datasets.load_dataset(path, **kwargs)
    except (ConnectionError, TimeoutError, OSError) as error:
        raise HubUnavailableError(
            f"cannot load dataset {path} ({error}). To run offline: {offline_hint}"
        ) from error
