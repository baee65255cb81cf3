"""Trainer: exact stop+resume, accumulation equivalence, NaN guard, param groups, schedules, tracking files."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from hercules.training import Trainer, TrainingDiverged, TrainingSettings
from hercules.training.checkpoint import CheckpointManager
from hercules.training.config import ScheduleSettings, TrackingSettings
from hercules.training.optim import Schedule, build_optimizer

QUIET = TrackingSettings(progress=False, plots=False)


def tiny_llama(seed: int = 0, dropout: float = 0.0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      attention_dropout=dropout)
    return LlamaForCausalLM(cfg)


def items(n: int, length: int = 12, seed: int = 1) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(1, 64, (length,), generator=gen)} for _ in range(n)]


def settings(**kw) -> TrainingSettings:
    base = dict(max_steps=6, batch_size=2, grad_accumulation=2, lr=3e-3, weight_decay=0.1, validate_at_start=False,
                schedule=ScheduleSettings(kind="cosine", warmup_steps=2, min_lr_ratio=0.1))
    return TrainingSettings(**(base | kw))


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_stop_and_resume_ends_with_the_same_weights(tmp_path):
    """Dropout on, cosine schedule, shuffled data over epochs: stop at 3 of 7 and resume == never stopped."""
    data, val = items(10), items(4, seed=2)
    s = settings(max_steps=7)
    full = Trainer(tiny_llama(dropout=0.2), s, data, tmp_path / "a", val_items=val, tracking=QUIET)
    full.train()

    first = Trainer(tiny_llama(dropout=0.2), s, data, tmp_path / "b", val_items=val, tracking=QUIET)
    first.train(stop_at_step=3)
    assert first.state.step == 3
    resumed = Trainer(tiny_llama(seed=5, dropout=0.2), s.model_copy(update={"resume": "latest"}), data,
                      tmp_path / "b", val_items=val, tracking=QUIET)
    assert resumed.state.step == 3
    resumed.train()

    a, b = params(full.unwrapped_model()), params(resumed.unwrapped_model())
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    opt_a, opt_b = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    for idx in opt_a:
        torch.testing.assert_close(opt_a[idx]["exp_avg_sq"], opt_b[idx]["exp_avg_sq"], rtol=0, atol=0)
    assert full.schedule.get_last_lr() == resumed.schedule.get_last_lr()
    # the metrics of the resumed run continue the first part without duplicates
    steps = [r["step"] for r in map(json.loads, (tmp_path / "b" / "metrics.jsonl").read_text().splitlines())
             if r["kind"] == "train"]
    assert steps == list(range(1, 8))


def test_accumulation_equals_a_larger_batch(tmp_path):
    data = items(8)
    a = Trainer(tiny_llama(), settings(batch_size=2, grad_accumulation=2, max_steps=3), data, tmp_path / "a",
                tracking=QUIET)
    b = Trainer(tiny_llama(), settings(batch_size=4, grad_accumulation=1, max_steps=3), data, tmp_path / "b",
                tracking=QUIET)
    a.train(), b.train()
    pa, pb = params(a.unwrapped_model()), params(b.unwrapped_model())
    for name in pa:
        torch.testing.assert_close(pa[name], pb[name], rtol=1e-5, atol=1e-6, msg=name)


class NanAfter(torch.nn.Module):
    """Wraps a model; every forward from call ``start`` on returns a NaN loss."""

    def __init__(self, model: torch.nn.Module, start: int) -> None:
        super().__init__()
        self.model, self.start, self.calls = model, start, 0

    def forward(self, **batch):
        out = self.model(**batch)
        self.calls += 1
        if self.calls > self.start:
            out.loss = out.loss * float("nan")
        return out


def test_nan_steps_are_skipped_then_the_run_stops_with_last_good_checkpoint(tmp_path):
    s = settings(max_steps=10, max_skipped_steps=2, grad_accumulation=1,
                 checkpoint={"every": 2, "keep_last": 3, "save_final": True})
    model = NanAfter(tiny_llama(), start=4)  # steps 1-4 good, 5+ NaN
    trainer = Trainer(model, s, items(8), tmp_path, tracking=QUIET)
    with pytest.raises(TrainingDiverged, match=r"max_skipped_steps=2.*step-00000004"):
        trainer.train()
    assert trainer.state.skipped == 3 and trainer.state.step == 7
    latest = trainer.checkpoints.latest()
    assert latest is not None and latest.name == "step-00000004"
    saved = CheckpointManager.load(latest, 0)["model"]
    now = params(trainer.unwrapped_model())
    for name, tensor in saved.items():
        assert torch.isfinite(tensor).all()
        torch.testing.assert_close(tensor, now[name], rtol=0, atol=0)  # skipped steps changed nothing
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "skip"] == [5, 6, 7]


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")  # peft reads the old name
def test_param_groups_get_their_learning_rates():
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.base_model.model.lm_head.weight.requires_grad_(True)  # stands in for memory/injection params
    opt = build_optimizer(model, settings(lr=1e-2, lora_lr=1e-4, weight_decay=0.1))
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["lora"]["lr"] == 1e-4 and by_name["main"]["lr"] == 1e-2
    assert by_name["main"]["weight_decay"] == 0.1
    lora_ids = {id(p) for n, p in model.named_parameters() if "lora_" in n}
    assert {id(p) for p in by_name["lora"]["params"]} == lora_ids


@pytest.mark.parametrize("kind", ["constant", "cosine", "linear"])
def test_schedule_warmup_then_shape(kind):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    sched = Schedule(opt, ScheduleSettings(kind=kind, warmup_steps=4, min_lr_ratio=0.1), total_steps=14)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(14):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    if kind == "constant":
        assert lrs[-1] == pytest.approx(1.0)
    else:
        assert lrs[-1] == pytest.approx(0.1)
        assert all(x >= y - 1e-12 for x, y in zip(lrs[4:], lrs[5:], strict=False))  # never increases after warm-up
    if kind == "cosine":
        assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_metrics_and_plots_are_written(tmp_path):
    s = settings(max_steps=4, eval_every=2, validate_at_start=True)
    trainer = Trainer(tiny_llama(), s, items(8), tmp_path, val_items=items(3, seed=3),
                      tracking=TrackingSettings(progress=True, plots=True))
    result = trainer.train()
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert all(r["tokens_per_s"] > 0 and r["tokens"] > 0 and "diag/param_norm/main" in r for r in train)
    assert [r["step"] for r in records if r["kind"] == "val"] == [0, 2, 4]
    assert result.best_val_loss == min(r["val_loss"] for r in records if r["kind"] == "val")
    for name in ("loss_curve.png", "memory_diagnostics.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")  # peft reads the old name
def test_each_group_logs_its_own_learning_rate(tmp_path):
    model = get_peft_model(tiny_llama(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.base_model.model.lm_head.weight.requires_grad_(True)  # stands in for memory/injection params
    trainer = Trainer(model, settings(max_steps=2, lr=1e-2, lora_lr=1e-4), items(4), tmp_path,
                      tracking=TrackingSettings(progress=False, plots=False))
    trainer.train()
    train = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"train"' in x]
    assert [(r["lr"], r["lora_lr"]) for r in train] == [(1e-2, 1e-4)] * 2  # training.lr, not the LoRA rate


class InterruptAt(torch.nn.Module):
    """Wraps a model; forward call number ``at`` sends this process SIGTERM (in the middle of a step)."""

    def __init__(self, model: torch.nn.Module, at: int) -> None:
        super().__init__()
        self.model, self.at, self.calls = model, at, 0

    def forward(self, **batch):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler preempting the job would
        return self.model(**batch)


def test_sigterm_mid_step_saves_an_exact_resume_point(tmp_path):
    data, s = items(10), settings(max_steps=5)
    full = Trainer(InterruptAt(tiny_llama(dropout=0.2), at=-1), s, data, tmp_path / "a", tracking=QUIET)
    full.train()
    broken = Trainer(InterruptAt(tiny_llama(dropout=0.2), at=6), s, data, tmp_path / "b", tracking=QUIET)
    with pytest.raises(KeyboardInterrupt):
        broken.train()  # call 6 = second micro-batch of step 3
    assert broken.checkpoints.latest().name == "step-00000002"
    resumed = Trainer(InterruptAt(tiny_llama(seed=3, dropout=0.2), at=-1), s.model_copy(update={"resume": "latest"}),
                      data, tmp_path / "b", tracking=QUIET)
    resumed.train()
    a, b = params(full.unwrapped_model()), params(resumed.unwrapped_model())
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_babilong_hook_runs_every_n_steps_and_is_logged(tmp_path):
    calls = []

    def fake_eval(model, step):
        calls.append((step, model.training))
        return {"babilong_mean": step / 10}

    trainer = Trainer(tiny_llama(), settings(max_steps=5, babilong_every=2), items(8), tmp_path, tracking=QUIET,
                      eval_fn=fake_eval)
    trainer.train()
    assert [c[0] for c in calls] == [2, 4]
    logged = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["babilong_mean"]) for r in logged if r["kind"] == "babilong"] == [(2, 0.2), (4, 0.4)]


@pytest.mark.parametrize("answer_len", [1, 3])
def test_sparse_logits_loss_equals_the_hf_loss_in_value_and_gradient(answer_len):
    from hercules.training.batches import collate
    from hercules.training.loss import causal_lm_loss

    gen = torch.Generator().manual_seed(0)
    rows = []
    for length in (9, 14, 11):  # ragged: right padding, answers at different positions
        ids = torch.randint(1, 64, (length,), generator=gen)
        labels = torch.full_like(ids, -100)
        labels[-answer_len:] = ids[-answer_len:]
        rows.append({"input_ids": ids, "labels": labels})
    batch = collate(rows, pad_token_id=0)
    model = tiny_llama()
    dense = model(**batch).loss
    dense.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    sparse = causal_lm_loss(model, batch)
    sparse.backward()
    torch.testing.assert_close(sparse, dense, rtol=1e-6, atol=1e-6)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], rtol=1e-5, atol=1e-7, msg=name)


def test_bf16_mixed_precision_trains_with_memory_diagnostics(tmp_path):
    """bf16 autocast (on CPU here, on GPU in practice) through an augmented model, diagnostics included: the
    memory layers keep bf16 hidden states, which the gate statistics must not feed to fp32 weights."""
    from accelerate.state import AcceleratorState

    import hercules
    from hercules.injection.diagnostics import log_diagnostics

    def run(precision: str, out) -> list[dict]:
        AcceleratorState._reset_state()  # Accelerate keeps one precision per process; tests switch it
        torch.manual_seed(0)
        model = hercules.augment(tiny_llama(), {"injection": {"kind": "mac"}, "layers": [0, 1]})
        trainer = Trainer(model, settings(max_steps=3, precision=precision), items(12), out, tracking=QUIET,
                          diagnostics_fn=log_diagnostics)
        trainer.train()
        return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]

    bf16, fp32 = run("bf16", tmp_path / "bf16"), run("fp32", tmp_path / "fp32")
    AcceleratorState._reset_state()
    assert all(math.isfinite(r["loss"]) and "layer0/gate_mean" in r for r in bf16)
    # bf16 rounding only: the first step's loss agrees with fp32 to bf16 precision
    assert abs(bf16[0]["loss"] - fp32[0]["loss"]) <= 2e-2 * fp32[0]["loss"]
