"""Training with early stopping on a validation metric, resumable after being killed.

``make_trainer(cfg, data, text)`` is the recipe of one model (seed, item table, backbone,
optimiser); ``train(cfg)`` is the whole pipeline of one run: data, text matrix (when the method
needs one), the trainer, final evaluation under both protocols, metrics by item popularity and
diagnostics. Each run lives in its own folder (see :mod:`spectran_tutorial.runs`):
``checkpoint.pt`` is rewritten after every epoch, so a killed run restarts where it stopped, and
``result.json`` marks it finished.
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .backbones import build_backbone
from .batching import ClozeBatches, NextItemBatches
from .config import Config
from .data import SequenceData, load_dataset
from .diagnostics import table_report
from .errors import ConfigError, SpectranError
from .evaluate import evaluate, metrics_by_bucket, popularity_buckets, rank_targets
from .item_tables import build_item_table, needs_text, resolve_method
from .losses import LOSSES
from .model import SequentialRecommender
from .metrics import ranking_metrics
from .provenance import code_fingerprint, git_commit, pick_device, provenance
from .runs import RunFolder, data_fingerprint, recipe, run_dir as default_run_dir, run_key
from .text import TextMatrix, text_matrix


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(cfg: Config, data: SequenceData, text: torch.Tensor | None = None) -> SequentialRecommender:
    table = build_item_table(cfg.method, data.num_items, cfg.model.dim, text, data.item_popularity()[1:])
    return SequentialRecommender(table, build_backbone(cfg.model, cfg.data))


def make_trainer(cfg: Config, data: SequenceData, text: TextMatrix | torch.Tensor | None = None, *,
                 device: torch.device | str | None = None, run_dir: Path | None = None,
                 progress: bool = False, log=None) -> "Trainer":
    """The recipe of one model: seed everything, build the item table and the backbone, and wrap
    them in a :class:`Trainer` (``trainer.fit()`` trains, ``trainer.model`` is the model).
    ``log`` receives a line per evaluation (None: silent)."""
    matrix = text.matrix if isinstance(text, TextMatrix) else text
    seed_everything(cfg.train.seed)
    model = build_model(cfg, data, matrix)
    device = pick_device(cfg.train.device) if device is None else torch.device(device)
    return Trainer(cfg, data, model, device, run_dir, progress, log or (lambda *_: None))


@dataclass
class TrainState:
    epoch: int = 0                 # epochs completed
    best_score: float = -1.0
    best_epoch: int = 0
    bad_evals: int = 0
    train_seconds: float = 0.0
    history: list | None = None    # one dict per evaluation

    def to_dict(self) -> dict:
        return dict(self.__dict__)


CHECK_EVERY = 50   # training steps between reads of the loss (and checks for NaN)


class Trainer:
    """Trains one model: the training loop, evaluation, checkpoints and early stopping."""

    def __init__(self, cfg: Config, data: SequenceData, model: SequentialRecommender,
                 device: torch.device, run_dir: Path | None = None, progress: bool = True, log=print,
                 key: str | None = None):
        device = torch.device(device)
        self.cfg, self.data, self.model, self.device = cfg, data, model.to(device), device
        self.key = key
        self.run_dir, self.progress, self.log = run_dir, progress, log
        t = cfg.train
        if t.loss not in LOSSES:
            raise ConfigError(f"unknown loss {t.loss!r}; choose one of {', '.join(LOSSES)}")
        self.loss_fn = LOSSES[t.loss]
        self.optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        histories = data.train_sequences()
        times = data.train_times() if model.uses_time else None
        if model.objective == "cloze":
            self.batches = ClozeBatches(histories, cfg.data.max_len, t.batch_size, t.seed,
                                        cfg.model.mask_ratio, cfg.model.last_only, times=times)
        else:
            self.batches = NextItemBatches(histories, cfg.data.max_len, t.batch_size, t.seed,
                                           times=times)
        self.state = TrainState(history=[])
        self.best_model: dict | None = None
        self.forward = self._forward if t.compile == "none" else \
            torch.compile(self._forward, mode=t.compile, dynamic=False)

    def _forward(self, inputs, masked, times) -> tuple[torch.Tensor, torch.Tensor]:
        """The item table and the hidden states of a training batch: the part that
        ``train.compile`` compiles (one graph per batch shape: the full batches and the last)."""
        table = self.model.table()
        return table, self.model.hidden(inputs, table, masked, times)

    # -- checkpoints ---------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / "checkpoint.pt" if self.run_dir else None

    def save_checkpoint(self) -> None:
        if not self.checkpoint_path:
            return
        blob = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "best_model": self.best_model, "state": self.state.to_dict(),
                "torch_rng": torch.get_rng_state(), "key": self.key,
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(blob, tmp)
        tmp.replace(self.checkpoint_path)

    def load_checkpoint(self) -> bool:
        if not (self.checkpoint_path and self.checkpoint_path.is_file()):
            return False
        path = self.checkpoint_path
        try:
            blob = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as e:   # a file cut short or not a checkpoint at all
            raise SpectranError(f"{path}: cannot read the checkpoint ({type(e).__name__}); delete it, "
                                "or rerun with --fresh, to start this run again") from None
        if self.key and blob.get("key") not in (None, self.key):
            raise SpectranError(f"{path} belongs to run {blob['key']}, not to {self.key}; delete it, "
                                "or rerun with --fresh")
        try:
            self.model.load_state_dict(blob["model"])
        except RuntimeError:
            raise SpectranError(f"{path} holds a model of other shapes (other data or settings); "
                                "delete it, or rerun with --fresh") from None
        self.optimizer.load_state_dict(blob["optimizer"])
        self.best_model = blob["best_model"]
        self.state = TrainState(**blob["state"])
        torch.set_rng_state(blob["torch_rng"])
        if blob.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(blob["cuda_rng"])
        return True

    # -- training ------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> float:
        """One pass over the training batches; returns the mean loss.

        Nothing inside the loop waits for the device: the loss is summed where it is computed and
        read every ``CHECK_EVERY`` steps (when it is also checked for NaN) and at the end, and the
        positions that have a target are found on the host, from the batch before it is copied, so
        that selecting them on the device needs no synchronisation (a boolean mask would)."""
        t = self.cfg.train
        self.model.train()
        gen = torch.Generator(device=self.device).manual_seed(t.seed * 7919 + epoch)
        exact = torch.float64 if self.device.type in ("cpu", "cuda") else torch.float32   # MPS has no float64
        total = torch.zeros((), dtype=exact, device=self.device)
        steps = len(self.batches)
        bar = tqdm(self.batches.epoch(epoch), total=steps, desc=f"epoch {epoch}", leave=False,
                   disable=not self.progress)
        for step, batch in enumerate(bar, start=1):
            rows = self._to_device(batch.targets.reshape(-1).gt(0).nonzero().squeeze(1))
            inputs, targets, masked, times = (None if x is None else self._to_device(x) for x in batch)
            with self._autocast():     # the forward pass; the loss below is computed in float32
                table, hidden = self.forward(inputs, masked, times)
            hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, rows)
            targets = targets.reshape(-1).index_select(0, rows)
            loss = self.loss_fn(hidden.float(), table.float(), targets, gen=gen,
                                temperature=t.temperature, num_negatives=t.num_negatives)
            aux = self.model.table.aux_loss()
            if aux is not None:
                loss = loss + aux
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach()
            if step % CHECK_EVERY == 0 or step == steps:
                mean = total.item() / step
                if not math.isfinite(mean):
                    raise FloatingPointError(f"the training loss became {mean} at epoch {epoch} (by step "
                                             f"{step}); lower the learning rate or the text scale")
                bar.set_postfix(loss=f"{mean:.4f}")
        return total.item() / max(steps, 1)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":     # pinned: the copy overlaps the work already queued
            return x.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device)

    def _autocast(self):
        if self.cfg.train.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def evaluate(self, split: str) -> dict[str, dict]:
        """Metrics of ``split`` under both protocols (``{"masked": {...}, "unmasked": {...}}``)."""
        return evaluate(self.model, self.data, split, max_len=self.cfg.data.max_len,
                        batch_size=self.cfg.train.eval_batch_size, device=self.device)

    def ranks(self, split: str):
        return rank_targets(self.model, self.data, split, max_len=self.cfg.data.max_len,
                            batch_size=self.cfg.train.eval_batch_size, device=self.device)

    @property
    def finished(self) -> bool:
        """Whether training has ended: all epochs run, or stopped early by the patience rule."""
        return self.state.epoch >= self.cfg.train.epochs or self.state.bad_evals >= self.cfg.train.patience

    def fit(self, deadline: float | None = None) -> TrainState:
        """Train until :attr:`finished`, or until the first epoch that ends after ``deadline`` (a
        ``time.time()`` value; the checkpoint then holds that epoch, and a later call resumes)."""
        t, s = self.cfg.train, self.state
        while not self.finished and (deadline is None or time.time() < deadline):
            start = time.perf_counter()
            loss = self.train_epoch(s.epoch + 1)
            s.train_seconds += time.perf_counter() - start
            s.epoch += 1
            if s.epoch % t.eval_every == 0 or s.epoch == t.epochs:
                valid = self.evaluate("valid")[t.select_protocol]
                score = valid[t.select_metric]
                if score > s.best_score:
                    s.best_score, s.best_epoch, s.bad_evals = score, s.epoch, 0
                    self.best_model = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                else:
                    s.bad_evals += 1
                s.history.append({"epoch": s.epoch, "loss": loss, **{f"valid_{k}": v for k, v in valid.items()}})
                self.log(f"epoch {s.epoch:3d}  loss {loss:.4f}  valid {t.select_metric} {score:.4f}  "
                         f"(best {s.best_score:.4f} at {s.best_epoch})")
            self.save_checkpoint()
        if self.best_model is not None and self.finished:
            self.model.load_state_dict(self.best_model)
        return s


def prepare_text(cfg: Config, data: SequenceData, progress: bool = True, log=print) -> TextMatrix | None:
    return text_matrix(data, cfg.text, progress=progress, log=log) if needs_text(cfg.method.name) else None


def train(cfg: Config, *, data: SequenceData | None = None, text: TextMatrix | None = None,
          run_dir: str | Path | None = "auto", runs_root: str | Path = "runs", progress: bool = True,
          log=print, fresh: bool = False, deadline: float | None = None) -> dict | None:
    """Train and evaluate one configuration; returns (and stores) the result record.

    ``run_dir="auto"`` keeps checkpoints under ``runs_root`` in the folder of the run's key;
    ``None`` keeps nothing on disk. A finished run is reused unless ``fresh``. With a ``deadline``
    (a ``time.time()`` value) training stops after the epoch that passes it and None is returned;
    the checkpoint lets a later call resume (so a deadline needs a run folder).
    """
    cfg.validate()
    resolve_method(cfg.method)    # fail early on an unknown method name
    if deadline is not None and run_dir is None:
        raise ConfigError("a deadline needs a run folder (run_dir) to keep the checkpoint it stops at; "
                          "without one, a run cut off by the deadline would be lost")
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    git_commit(), code_fingerprint()   # read now, before any edit of the tree can follow
    identity = {"key": run_key(cfg, data), "data_files": data_fingerprint(cfg, data), "recipe": recipe(cfg)}
    folder = RunFolder(default_run_dir(cfg, runs_root, data) if run_dir == "auto" else run_dir)
    done = None if fresh else folder.finished()
    if done is not None:
        log(f"already finished: {folder.result_path}")
        return done
    if deadline is not None and time.time() >= deadline:
        log("the time budget was spent before this run began")
        return None
    folder.start(cfg, identity, fresh)
    if data is None:
        d = cfg.data
        data = load_dataset(d.dataset, d.data_dir, max_users=d.max_users, min_user_len=d.min_user_len, log=log)
    if text is None:
        text = prepare_text(cfg, data, progress, log)
    trainer = make_trainer(cfg, data, text, run_dir=folder.path, progress=progress, log=log)
    trainer.key = identity["key"]
    if trainer.load_checkpoint():
        log(f"resuming {folder.path} after epoch {trainer.state.epoch}")
    state = trainer.fit(deadline)
    if not trainer.finished:
        log(f"stopped by the time budget after epoch {state.epoch}; run again to resume")
        return None
    result = {"dataset": cfg.data.dataset, "backbone": cfg.model.backbone, "method": cfg.method.name,
              "seed": cfg.train.seed, **final_evaluation(trainer),
              "epochs": state.epoch, "best_epoch": state.best_epoch,
              "seconds_per_epoch": state.train_seconds / max(state.epoch, 1),
              **run_facts(trainer, text), "history": state.history, "config": cfg.to_record(),
              **identity, **provenance(trainer.device)}
    folder.finish(result, trainer.model.state_dict())
    return result


def final_evaluation(trainer: Trainer) -> dict:
    """Validation and test metrics of the selected model under both protocols (``valid``/``test``
    are the masked protocol, as in rows stored before both were kept; ``*_unmasked`` the other),
    and the test metrics by popularity of the target item, all from one ranking pass per split."""
    start = time.perf_counter()
    valid = trainer.ranks("valid")
    eval_seconds = time.perf_counter() - start
    test = trainer.ranks("test")
    out = {}
    for split, ranks in (("valid", valid), ("test", test)):
        out[split] = ranking_metrics(ranks.masked)
        out[f"{split}_unmasked"] = ranking_metrics(ranks.unmasked)
    bucket, bounds = popularity_buckets(trainer.data, "test")
    cfg = trainer.cfg.train
    return {**out, "protocols": {"valid": "masked", "test": "masked", "valid_unmasked": "unmasked",
                                 "test_unmasked": "unmasked",
                                 "selection": f"valid {cfg.select_metric} ({cfg.select_protocol})"},
            "test_by_popularity": metrics_by_bucket(test, bucket, bounds), "eval_seconds": eval_seconds}


def run_facts(trainer: Trainer, text: TextMatrix | None) -> dict:
    """What a run was made of: data statistics, parameters, the text matrix and the final table."""
    model = trainer.model
    with torch.no_grad():
        table = model.table()
    return {"data": trainer.data.stats,
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "encoder": text.encoder if text is not None else None,
            "text_dim": text.dim if text is not None else None,
            "text_digest": text_digest(text.matrix) if text is not None else None,
            "items_without_text": text.missing if text is not None else None,
            "diagnostics": {**table_report(table), **model.table.diagnostics()}}


def load_trained(folder: str | Path, *, data: SequenceData | None = None,
                 text: TextMatrix | None = None) -> SequentialRecommender:
    """The trained model of a finished run, rebuilt from its folder (``config.json`` and
    ``model.pt``); the data and the text matrix are loaded as the run loaded them unless given."""
    import json
    folder = Path(folder)
    try:
        cfg = Config.from_dict(json.loads((folder / "config.json").read_text())["config"])
        weights = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise SpectranError(f"{folder}: not a finished run ({Path(e.filename).name} is missing)") from None
    if data is None:
        d = cfg.data
        data = load_dataset(d.dataset, d.data_dir, max_users=d.max_users, min_user_len=d.min_user_len,
                            log=lambda *_: None)
    if text is None:
        text = prepare_text(cfg, data, progress=False, log=lambda *_: None)
    model = build_model(cfg, data, text.matrix if text is not None else None)
    model.load_state_dict(weights)
    return model.eval()


def text_digest(matrix: torch.Tensor) -> str:
    """sha256 (16 hex digits) of the text matrix's float32 bytes: two runs with equal digests read
    the same embeddings bit for bit (an encoder run on another CPU may differ in the last bits)."""
    import hashlib
    return hashlib.sha256(matrix.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()[:16]

