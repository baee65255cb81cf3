"""The training loop: HF Accelerate, gradient accumulation, clipping, NaN guard, validation, checkpoints.

The same code runs on one CPU, one GPU or several processes (``accelerate launch``): the model is wrapped by
Accelerate (DDP when several processes; bf16 autocast on GPU), and the data order is a
:class:`~hercules.training.batches.MicroBatchStream` that each process reads at its own offsets, so W processes with
accumulation A take the same optimizer steps as one process with accumulation W·A.

Examples:
    >>> from hercules.training import Trainer, TrainingSettings
    >>> trainer = Trainer(model, TrainingSettings(max_steps=100, lr=1e-3), train_items, "runs/x",
    ...                   val_items=val_items, pad_token_id=tok.pad_token_id)  # doctest: +SKIP
    >>> result = trainer.train()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from hercules.backbones.compat import enable_activation_checkpointing
from hercules.training.batches import (
    LayoutBatchStream,
    MicroBatchStream,
    collate,
    count_target_tokens,
    layout_key,
    segment_lengths,
)
from hercules.training.checkpoint import CheckpointManager, load_trainable_state, trainable_state
from hercules.training.config import TrackingSettings, TrainingSettings
from hercules.training.guards import WeightFingerprint, idle_run_warnings, nonfinite_parameters
from hercules.training.loss import causal_lm_loss
from hercules.training.optim import Schedule, build_optimizer
from hercules.training.plots import plot_run, schedule_text
from hercules.training.prefix_cache import FrozenPrefix
from hercules.training.run_folder import RunLock, open_run_folder
from hercules.training.segment_loss import segmented_lm_loss
from hercules.training.serialize import rng_state, set_rng_state
from hercules.training.support import (
    TrainingDiverged,
    TrainResult,
    TrainState,
    default_diagnostics,
    make_accelerator,
    sigterm_as_interrupt,
)
from hercules.training.tracking import MetricsLog, progress_bar

logger = logging.getLogger(__name__)

Item = Mapping[str, Any]


class Trainer:
    """Trains the trainable parameters of ``model`` on ``train_items`` (dicts with ``input_ids``, ``labels``).

    Args:
        eval_fn: called as ``eval_fn(model, step) -> dict`` every ``training.babilong_every`` steps (BABILong).
        diagnostics_fn: ``diagnostics_fn(model) -> dict[str, float]`` logged with each training record.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        settings: TrainingSettings,
        train_items: Sequence[Item],
        run_dir: str | Path,
        *,
        val_items: Sequence[Item] | None = None,
        pad_token_id: int = 0,
        seed: int = 0,
        tracking: TrackingSettings | None = None,
        eval_fn: Callable[[torch.nn.Module, int], dict[str, Any]] | None = None,
        diagnostics_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
        accelerator: Accelerator | None = None,
        config_for_trackers: dict[str, Any] | None = None,
    ) -> None:
        self.settings, self.tracking = settings, tracking or TrackingSettings()
        self.run_dir = Path(run_dir)
        self.acc = accelerator or make_accelerator(settings, self.tracking, self.run_dir)
        self.train_items, self.val_items = train_items, list(val_items or [])
        self.pad_token_id, self.seed = pad_token_id, seed
        self.eval_fn, self.diagnostics_fn = eval_fn, diagnostics_fn
        self.world, self.rank = self.acc.num_processes, self.acc.process_index
        _check_segmented(settings, self.train_items, self.val_items)
        self._streams: dict[int | None, tuple[list[int], MicroBatchStream | LayoutBatchStream]] = {}
        self.stream = self._stream(None)[1]
        self.total_steps = settings.max_steps or math.ceil(
            settings.epochs * self.stream.batches_per_epoch / (settings.grad_accumulation * self.world)
        )
        self.checkpoints = CheckpointManager(
            self.run_dir / "checkpoints", settings.checkpoint.keep_last, settings.checkpoint.keep_best
        )
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", enabled=self.acc.is_main_process)
        self.state = TrainState()
        self._lock = self._open_run_folder()
        set_seed(seed + self.rank)
        if settings.gradient_checkpointing:
            enable_activation_checkpointing(model)
        self.optimizer = build_optimizer(model, settings)
        self.schedule = Schedule(self.optimizer, settings.schedule, self.total_steps)
        if settings.resume:
            self._resume(model, settings.resume)
        self.model, self.optimizer = self.acc.prepare(model, self.optimizer)
        self.prefix = self._frozen_prefix(model)
        if self.tracking.report_to:
            self.acc.init_trackers(self.tracking.project, config=config_for_trackers or {})

    @property
    def _shows_progress(self) -> bool:
        """Progress bars are drawn by the main process only, when tracking asks for them."""
        return self.tracking.progress and self.acc.is_main_process

    def _frozen_prefix(self, model: torch.nn.Module) -> FrozenPrefix | None:
        """The kept frozen prefix of ``training.segments.frozen_prefix`` (None when off)."""
        if self.settings.segments is None or not self.settings.segments.frozen_prefix:
            return None
        start = FrozenPrefix.start_of(model)
        if not start:
            raise ValueError("training.segments.frozen_prefix: the first decoder layer (or the embeddings) trains, "
                             "so no layer's output is fixed; train only upper layers or set frozen_prefix: false")
        prefix = FrozenPrefix(self.model, start)
        began = time.perf_counter()
        count = prefix.fill(self.model, [*self.train_items, *self.val_items], progress=self._shows_progress)
        logger.info("frozen prefix: decoder layers below %d run once for %d segments (%.0f s, %.2f GB kept)",
                    start, count, time.perf_counter() - began, prefix.nbytes / 1e9)
        return prefix

    # ---- run folder and resume ---------------------------------------------------------------------------
    def _open_run_folder(self) -> RunLock | None:
        """Lock, check and repair the run folder (see :func:`~hercules.training.run_folder.open_run_folder`)."""
        lock = open_run_folder(self.run_dir, self.checkpoints, fresh=not self.settings.resume,
                               is_main=self.acc.is_main_process, rank=self.rank)
        self.acc.wait_for_everyone()
        return lock

    def _resume(self, model: torch.nn.Module, spec: str) -> None:
        try:
            folder = self.checkpoints.resolve(spec)
        except FileNotFoundError:
            if spec == "latest":
                logger.info("no checkpoint to resume under %s; starting fresh", self.checkpoints.root)
                return
            raise
        saved = CheckpointManager.load(folder, self.rank)
        load_trainable_state(model, saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        ts = saved["trainer_state"]
        self.state = TrainState(**{k: ts[k] for k in TrainState.__dataclass_fields__ if k in ts})
        self.schedule.load_state_dict(ts["schedule"])
        set_rng_state(saved["rng"])
        self.metrics.truncate_after(self.state.step)
        logger.info("resumed from %s at step %d", folder, self.state.step)

    # ---- one optimizer step ------------------------------------------------------------------------------
    def _stream(self, max_segments: int | None) -> tuple[list[int], MicroBatchStream | LayoutBatchStream]:
        """The items allowed under a curriculum stage (all for ``None``) and their micro-batch stream."""
        if max_segments not in self._streams:
            pool = [
                j for j, it in enumerate(self.train_items)
                if max_segments is None or len(it["segment_lengths"]) <= max_segments
            ]
            if not pool:
                raise ValueError(f"training.segments.curriculum: no training item has at most {max_segments} "
                                 "segments; raise max_segments or add shorter items")
            seed = self.seed + (0 if max_segments is None else 7919 * max_segments)
            if self.settings.segments is None:
                stream = MicroBatchStream(len(pool), self.settings.batch_size, seed)
            else:  # a micro-batch must share one segment layout
                layouts = [layout_key(self.train_items[j]) for j in pool]
                stream = LayoutBatchStream(layouts, self.settings.batch_size, seed)
            self._streams[max_segments] = pool, stream
        return self._streams[max_segments]

    def _micro_batch(self, step: int, i: int) -> dict[str, Any]:
        g = (step * self.settings.grad_accumulation + i) * self.world + self.rank
        segments = self.settings.segments
        pool, stream = self._stream(segments.max_segments(step) if segments else None)
        return self._to_batch([self.train_items[pool[j]] for j in stream.indices(g)])

    def _to_batch(self, items: Sequence[Item]) -> dict[str, Any]:
        batch = {k: v.to(self.acc.device) for k, v in collate(items, self.pad_token_id).items()}
        if self.settings.segments is not None:
            batch["segment_lengths"] = segment_lengths(items)
        return batch

    def _loss(self, model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
        """The batch's loss: in segments (``training.segments``) or as one causal-LM pass."""
        segments = self.settings.segments
        if segments is None:
            return causal_lm_loss(model, batch, self.settings.sparse_logits)
        tensors = {k: v for k, v in batch.items() if k != "segment_lengths"}
        return segmented_lm_loss(
            model, tensors, batch["segment_lengths"], segments.bptt_segments, segments.activation_checkpointing,
            self.prefix,
        )

    def _train_step(self, step: int) -> dict[str, float]:
        """Forward/backward over the accumulated micro-batches, then clip and update (or skip if non-finite)."""
        accum = self.settings.grad_accumulation
        losses, tokens = [], 0
        for i in range(accum):
            batch = self._micro_batch(step, i)
            tokens += int(batch["attention_mask"].sum())
            sync = contextlib.nullcontext() if i == accum - 1 else self.acc.no_sync(self.model)
            with sync:
                loss = self._loss(self.model, batch)
                self.acc.backward(loss / accum)
            losses.append(loss.detach().float())
        max_norm = self.settings.max_grad_norm or float("inf")
        grad_norm = self.acc.clip_grad_norm_(self.model.parameters(), max_norm)
        local = torch.stack(losses).mean().reshape(1)
        loss = float(self.acc.gather(local).mean())
        tokens = int(self.acc.gather(torch.tensor([tokens], device=self.acc.device)).sum())
        finite = math.isfinite(loss) and math.isfinite(float(grad_norm))
        if finite:
            self.optimizer.step()
            self._check_weights(step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        return {"loss": loss, "grad_norm": float(grad_norm), "tokens": tokens, "finite": finite}

    def _check_weights(self, step: int) -> None:
        """Stop before anything can save them when an update made trainable weights non-finite."""
        bad = nonfinite_parameters(self.acc.unwrap_model(self.model))
        if bad:
            last = self.checkpoints.latest()
            raise TrainingDiverged(
                f"step {step} made trainable weights non-finite ({', '.join(bad[:3])}) although its loss and "
                f"gradient were finite; nothing of it was saved; last good checkpoint: {last or 'none'}. "
                f"Lower training.lr / lora_lr or check training.eps."
            )

    # ---- validation --------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> float | None:
        """Token-weighted mean loss over the validation items (split over processes)."""
        if not self.val_items:
            return None
        model = self.acc.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        total = torch.zeros(2, device=self.acc.device, dtype=torch.float64)
        shard = self.val_items[self.rank :: self.world]
        if self.settings.segments is not None:  # batches of one layout each
            shard = sorted(shard, key=layout_key)
        for chunk in _batches_of(shard, self.settings.batch_size, self.settings.segments is not None):
            batch = self._to_batch(chunk)
            with self.acc.autocast():
                loss = self._loss(model, batch).double()
            n = count_target_tokens(batch["labels"])
            total += torch.stack([loss * n, torch.tensor(float(n), device=total.device, dtype=torch.float64)])
        model.train(was_training)
        total = self.acc.reduce(total, "sum")
        return float(total[0] / total[1]) if total[1] > 0 else None

    # ---- checkpoint --------------------------------------------------------------------------------------
    def save_checkpoint(self, rng: dict[str, Any] | None = None) -> Path:
        self.state.schedule = self.schedule.state_dict()
        return self.checkpoints.save(
            self.state.step,
            is_main=self.acc.is_main_process,
            rank=self.rank,
            barrier=self.acc.wait_for_everyone,
            model_state=lambda: trainable_state(self.acc.unwrap_model(self.model)),
            optimizer_state=self.optimizer.state_dict,
            trainer_state=self.state.__dict__ | {"total_steps": self.total_steps, "world": self.world},
            rng=rng,
        )

    # ---- the loop ----------------------------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        self.metrics.write(record)
        if self.tracking.report_to:
            step = record["step"]
            self.acc.log(
                {
                    f"{record['kind']}/{k}": v
                    for k, v in record.items()
                    if isinstance(v, (int, float)) and k not in ("step",)
                },
                step=step,
            )

    def _validate_and_log(self) -> bool:
        """Validation at the current step; True when it is the best so far."""
        val = self.validate()
        if val is None:
            return False
        self.state.val_loss, self.state.val_step = val, self.state.step
        improved = self.state.best_val_loss is None or val < self.state.best_val_loss
        if improved:
            self.state.best_val_loss = val
        self._log({"step": self.state.step, "kind": "val", "val_loss": val})
        logger.info("step %d: validation loss %.4f", self.state.step, val)
        return improved

    def _after_step(self, out: dict[str, Any], seconds: float) -> None:
        s, st = self.settings, self.state
        if out["finite"]:
            st.tokens += out["tokens"]
        else:
            st.skipped += 1
            self._log({"step": st.step, "kind": "skip", "loss": out["loss"], "grad_norm": out["grad_norm"]})
            logger.warning("step %d skipped: loss %s, grad norm %s", st.step, out["loss"], out["grad_norm"])
            if st.skipped > s.max_skipped_steps:
                last = self.checkpoints.latest()
                raise TrainingDiverged(
                    f"training stopped at step {st.step}: {st.skipped} steps had a non-finite loss or gradient "
                    f"(limit training.max_skipped_steps={s.max_skipped_steps}); last good checkpoint: "
                    f"{last or 'none'}. Lower training.lr, set training.max_grad_norm, or check the data."
                )
            return
        if st.step % s.log_every == 0 or st.step == self.total_steps:
            record = {
                "step": st.step,
                "kind": "train",
                "loss": out["loss"],
                "grad_norm": out["grad_norm"],
                **self._learning_rates(),
                "tokens": st.tokens,
                "tokens_per_s": out["tokens"] / max(seconds, 1e-9),
            }
            if self.acc.is_main_process:
                unwrapped = self.acc.unwrap_model(self.model)
                record |= (self.diagnostics_fn or (lambda m: default_diagnostics(m, s)))(unwrapped)
            self._log(record)

    def _periodic(self) -> Path | None:
        """Validation, BABILong and checkpointing due after the current step."""
        s, step = self.settings, self.state.step
        interval = s.validation_interval(self.total_steps)
        final = step == self.total_steps
        improved = False
        if (interval and step % interval == 0) or final:
            improved = self._validate_and_log()
        if self.eval_fn and s.babilong_every and step % s.babilong_every == 0 and not final:
            if self.acc.is_main_process:  # generation is not split over processes; the others wait
                results = self.eval_fn(self.acc.unwrap_model(self.model), step)
                numbers = {k: v for k, v in results.items() if isinstance(v, (int, float))}
                self._log({"step": step, "kind": "babilong"} | numbers)
            self.model.train()  # evaluation switches to eval mode
            self.acc.wait_for_everyone()
        ck = s.checkpoint
        if (
            (ck.every and step % ck.every == 0)
            or (final and ck.save_final)
            or (improved and ck.keep_best and ck.every)
        ):
            return self.save_checkpoint()
        return None

    def train(self, stop_at_step: int | None = None) -> TrainResult:
        """Run to ``total_steps`` (or stop after ``stop_at_step``, saving a checkpoint, as a preemption would).

        The run folder's lock is released when this returns or raises.
        """
        try:
            return self._train(stop_at_step)
        finally:
            if self._lock is not None:
                self._lock.release()

    def _train(self, stop_at_step: int | None) -> TrainResult:
        self.model.train()
        st, last_ckpt, last_loss = self.state, self.checkpoints.latest(), None
        start_step, losses = st.step, []
        fingerprint = WeightFingerprint(self.acc.unwrap_model(self.model))
        if st.step == 0:
            self.metrics.truncate_after(
                -1
            )  # a fresh run replaces the metrics of an earlier one in this folder
        if st.step == 0 and self.settings.validate_at_start and self.val_items:
            self._validate_and_log()
        with sigterm_as_interrupt(), progress_bar(self._shows_progress) as bar:
            task = bar.add_task("training", total=self.total_steps, completed=st.step, loss="-", tps="-")
            while st.step < self.total_steps:
                rng = rng_state()  # as of the step boundary, so an interrupt can save an exact resume point
                t0 = time.perf_counter()
                try:
                    out = self._train_step(st.step)
                except KeyboardInterrupt:
                    logger.warning("interrupted: saving a checkpoint at step %d", st.step)
                    self.save_checkpoint(rng)
                    raise
                st.step += 1
                self._after_step(out, time.perf_counter() - t0)
                if out["finite"]:
                    last_loss = out["loss"]
                if math.isfinite(out["loss"]):  # a skipped step's loss too: it shows a stalled model
                    losses.append(out["loss"])
                bar.update(
                    task,
                    completed=st.step,
                    loss=f"{out['loss']:.4f}",
                    tps=f"{out['tokens'] / max(time.perf_counter() - t0, 1e-9):,.0f}",
                )
                if out["finite"] or st.step == self.total_steps:  # no checkpoint right after a skipped step
                    last_ckpt = self._periodic() or last_ckpt
                if stop_at_step is not None and st.step >= stop_at_step and st.step < self.total_steps:
                    last_ckpt = self.save_checkpoint()
                    break
        for message in idle_run_warnings(self.acc.unwrap_model(self.model), fingerprint, losses,
                                         steps=(start_step + 1, st.step)):
            logger.warning(message)
        self.finish()
        return TrainResult(st.step, st.skipped, last_loss, st.best_val_loss, last_ckpt, self.run_dir)

    def _learning_rates(self) -> dict[str, float]:
        """``lr`` of the memory/injection group (``training.lr`` × schedule) and ``lora_lr`` of the LoRA group."""
        rates = {g.get("name", ""): g["lr"] for g in self.optimizer.param_groups}
        out: dict[str, float] = {}
        for key, group in (("lr", "main"), ("lora_lr", "lora")):
            for name in (group, f"{group}_no_decay"):
                if name in rates:
                    out.setdefault(key, rates[name])
        return out or {"lr": self.optimizer.param_groups[0]["lr"]}

    def finish(self) -> None:
        """Write the plots and close the trackers."""
        if self.acc.is_main_process and self.tracking.plots:
            plot_run(self.metrics.read(), self.run_dir, schedule=schedule_text(self.settings.schedule))
        if self.tracking.report_to:
            self.acc.end_training()
        self.acc.wait_for_everyone()

    def unwrapped_model(self) -> torch.nn.Module:
        return self.acc.unwrap_model(self.model)


def _batches_of(items: Sequence[Item], size: int, by_layout: bool) -> list[Sequence[Item]]:
    """Consecutive batches of at most ``size`` items; with ``by_layout``, a batch never spans two layouts."""
    batches: list[list[Item]] = []
    for item in items:
        if not batches or len(batches[-1]) == size or (by_layout and layout_key(batches[-1][0]) != layout_key(item)):
            batches.append([])
        batches[-1].append(item)
    return batches


def _check_segmented(settings: TrainingSettings, train: Sequence[Item], val: Sequence[Item]) -> None:
    """Segmented items go with ``training.segments`` and the other way round; the error names the fix."""
    for name, items in (("training", train), ("validation", val)):
        marked = sum("segment_lengths" in it for it in items)
        if settings.segments is not None and marked < len(items):
            raise ValueError(f"training.segments is set but {len(items) - marked} {name} items have no "
                             "segment_lengths; use a data source that lays items out in segments")
        if settings.segments is None and marked:
            raise ValueError(f"{marked} {name} items are laid out in segments; set training.segments "
                             "(e.g. `segments: {}`) to train across them")
