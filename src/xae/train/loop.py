"""The training loop: one process or DDP under ``torchrun``, resumable, atomic checkpoints.

The whole data set lives on the training device as one tensor; a batch is an index slice of
a per-epoch permutation drawn from (seed, epoch), so a resumed run sees the same batches.
"""
from __future__ import annotations

import copy
import gc
import json
import logging
import math
import shutil
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from xae import schedules
from xae.config import Config, validate
from xae.cpu import check_threads
from xae.data import Dataset, binarize, covariates, load as load_data
from xae.data.split import hold_out
from xae.errors import XaeError
from xae.evaluate.codes import code_counts, usage_metrics
from xae.evaluate.diagnostics import active_unit_counts, evaluate, rate_distortion
from xae.fileio import write_json, write_text
from xae.likelihoods.discretized import check_on_grid
from xae.model import Autoencoder
from xae.optim import MODEL, OptimizerSpec, build_optimizers
from xae.outputs import LossOutput
from xae.registry import build
from xae.runfiles import HELD_OUT, LOG, METRICS
from xae.train import checkpoint as ckpt
from xae.train import distributed as dist_
from xae.train.rundir import prepare_dir as _prepare_dir
from xae.train.window import Window, logged_values

log = logging.getLogger(__name__)


class TrainingDiverged(XaeError):
    """The loss or gradient became NaN/Inf; the last good checkpoint is left as it was."""


def _device(cfg: Config, info: dist_.DistInfo) -> torch.device:
    dist_.checked_device(cfg.train.device, "train.device")
    return dist_.device_for(cfg.train.device, info)


def _check_compatible(cfg: Config, data: Dataset) -> None:
    if cfg.model.likelihood == "bernoulli":
        lo, hi = float(data.train_x.min()), float(data.train_x.max())
        if lo < 0 or hi > 1:
            raise XaeError(f"the bernoulli likelihood needs data in [0, 1], but this data spans "
                           f"[{lo:.3g}, {hi:.3g}]; use model.likelihood=gaussian (or laplace)")
    if cfg.model.likelihood == "discretized":
        check_on_grid(data.train_x, f"the {cfg.data.name} training data")


def _permutation(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


SKIPS_IN_ROW = 50
"""Updates skipped in a row (train.skip_grad_norm) after which the run stops: it no longer
learns."""


def _nonfinite_term(out: LossOutput, optimizer: str) -> str:
    for name, t in out.terms.items():
        if not torch.isfinite(t.value).all():
            return f"{t.kind} term '{name}'"
    for name, loss in out.losses.items():
        if not torch.isfinite(loss):
            return f"loss of the {name} optimizer"
    return f"gradient norm of the {optimizer} optimizer"


class Trainer:
    """Holds the state of one run; :meth:`run` trains to the end (or until train.max_minutes
    is spent) and writes the run folder."""

    def __init__(self, cfg: Config, out: Path, data: Dataset, resume: bool) -> None:
        self.cfg, self.out = cfg, out
        self.info = dist_.setup(cfg.train.device)
        self.device = _device(cfg, self.info)
        check_threads(cfg.train.threads)
        self.held_out = None  # the samples of the held-out evaluations during training
        self.held_out_c = None  # and their covariate levels
        if cfg.model.covariate != "none":  # the model's one-hot columns: the data's levels
            levels = covariates.check_levels(data, cfg.model.covariate,
                                             cfg.model.covariate_levels)
            cfg = self.cfg = copy.deepcopy(cfg)
            cfg.model.covariate_levels = levels
        held = None
        if cfg.train.eval_every and cfg.train.eval_split == "validation":
            data, held = hold_out(data, cfg.train.validation_fraction, cfg.data.seed)
        elif cfg.train.eval_every:
            held = data
        if held is not None:
            n = cfg.train.eval_samples
            self.held_out = held.test_x[:n]
            c = covariates.codes(held, cfg.model.covariate, "test")
            self.held_out_c = None if c is None else c[:n].to(self.device)
            if cfg.data.binarize == "dynamic" and cfg.train.eval_split == "validation":
                # one fixed draw, as the test set has: the model is trained on binary pixels
                gen = torch.Generator().manual_seed(cfg.data.seed)
                self.held_out = binarize(self.held_out, gen, check=False)
            self.held_out = self.held_out.to(self.device)
        self.data = data.to(self.device)
        self.train_c = covariates.codes(self.data, cfg.model.covariate, "train")
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
        if cfg.model.regularizer == "tc" and not cfg.model.tc.dataset_size:
            cfg = self.cfg = copy.deepcopy(cfg)  # β-TCVAE's estimate of q(z) needs N
            cfg.model.tc.dataset_size = int(data.train_x.shape[0])
        self.model: Autoencoder = build(cfg, data.shape).to(self.device)
        if self.model.library is not None:  # its prior: the training cells' library moments
            self.model.library.fit(self.data.train_x, self.train_c)
        _check_compatible(cfg, data)
        self.opts = build_optimizers(self.model, OptimizerSpec(
            cfg.train.lr, (cfg.train.beta1, cfg.train.beta2),
            weight_decay=cfg.train.weight_decay))
        self.params = {name: [p for g in opt.param_groups for p in g["params"]]
                       for name, opt in self.opts.items()}
        self.step, self.window, self.elapsed = 0, Window(), 0.0
        self._skips_in_row = 0
        self.best: dict[str, float] = {}  # step and loss of the best held-out evaluation
        torch.manual_seed(cfg.train.seed + self.info.rank)
        if resume:
            self._restore()
        # a piece with its own optimizer may sit out a step (a discriminator that starts late)
        self.net = DDP(self.model, find_unused_parameters=len(self.opts) > 1) \
            if self.info.active else self.model
        n = data.train_x.shape[0]
        self.batch = min(cfg.train.batch_size, n)
        if self.batch % self.info.world:
            raise XaeError(f"train.batch_size {self.batch} must divide evenly over "
                           f"{self.info.world} processes")
        self.steps_per_epoch = max(n // self.batch, 1)
        self.total = cfg.train.steps or cfg.train.epochs * self.steps_per_epoch

    def _restore(self) -> None:
        state = ckpt.load_state(self.out)
        ckpt.load_weights(self.model, self.out / ckpt.CHECKPOINT, self.device)
        saved = state.get("optimizers") or {MODEL: state.get("optimizer")}
        try:  # the lr is set from the config each step
            if set(saved) != set(self.opts):
                raise KeyError(f"optimizers {sorted(saved)}, not {sorted(self.opts)}")
            for name, opt in self.opts.items():
                base = [g["base_lr"] for g in opt.param_groups]  # the config's, not the saved
                opt.load_state_dict(saved[name])
                for g, lr in zip(opt.param_groups, base):
                    g["base_lr"] = lr
        except (ValueError, KeyError, TypeError, RuntimeError) as e:
            raise XaeError(f"the optimizer state in '{self.out / ckpt.CHECKPOINT}' does not "
                           f"belong to this model ({e}); delete the run folder and retrain") \
                from None
        self.step, self.elapsed = int(state["step"]), float(state["elapsed_s"])
        self.best = dict(state.get("best", {}))
        self.window = Window.from_state(state["window"], self.device)
        if self.info.active:
            torch.manual_seed(self.cfg.train.seed + self.info.rank + self.step)
        else:
            torch.set_rng_state(state["rng_cpu"])
            if self.device.type == "cuda" and "rng_cuda" in state:
                torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        if self.info.main:  # drop log lines written after the checkpoint
            for name in (LOG, HELD_OUT):
                self._truncate_log(self.out / name, self.step)

    def _truncate_log(self, path: Path, step: int) -> None:
        if path.is_file():
            keep = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= step:
                        keep.append(line)
                except (json.JSONDecodeError, KeyError):
                    break  # a line cut short by the kill
            write_text(path, "".join(k + "\n" for k in keep))

    def _batch(self, step: int, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The step's samples and their covariate levels (None without a covariate)."""
        i = step % self.steps_per_epoch
        idx = perm[i * self.batch:(i + 1) * self.batch]
        if self.info.active:
            idx = idx[self.info.rank::self.info.world]
        x = self.data.train_x[idx]
        c = None if self.train_c is None else self.train_c[idx]
        return binarize(x, check=False) if self.cfg.data.binarize == "dynamic" else x, c

    def _train_step(self, x: torch.Tensor, beta: float, c: torch.Tensor | None) -> LossOutput:
        """One forward pass, one backward pass over the model's loss and the losses of the
        other optimizers that step this time (each piece with an optimizer of its own keeps
        its loss to its own parameters), then each of those optimizers clips, checks and
        steps."""
        out = self.net(x, beta=beta, step=self.step, c=c)
        for opt in self.opts.values():
            opt.zero_grad(set_to_none=True)
        sum(out.losses.values(), out.loss).backward()
        clip, skip = self.cfg.train.grad_clip, self.cfg.train.skip_grad_norm
        stepping = [MODEL, *(name for name in out.losses if name in self.opts)]
        skipped: dict[str, float] = {}
        for name in stepping:
            loss = out.loss if name == MODEL else out.losses[name]
            gnorm = torch.nn.utils.clip_grad_norm_(self.params[name], clip or math.inf) \
                if clip > 0 or skip > 0 else None
            if not (torch.isfinite(loss) and (gnorm is None or torch.isfinite(gnorm))):
                raise TrainingDiverged(
                    f"training diverged at step {self.step + 1}: the "
                    f"{_nonfinite_term(out, name)} became NaN or Inf. {self._last_good()}; "
                    f"lower train.lr, keep train.grad_clip on, or check the data")
            if skip > 0 and gnorm > skip:
                skipped[name] = float(gnorm)
        for name in stepping:
            if name not in skipped:
                self.opts[name].step()
        if skip > 0:  # the share of steps skipped, per log window
            out.metrics["skipped"] = torch.tensor(float(MODEL in skipped))
            self._skips_in_row = self._skips_in_row + 1 if MODEL in skipped else 0
            if self._skips_in_row >= SKIPS_IN_ROW:
                raise TrainingDiverged(
                    f"the last {SKIPS_IN_ROW} updates were all skipped at step {self.step + 1}: "
                    f"their gradient norms (the last {skipped[MODEL]:.4g}) exceeded "
                    f"train.skip_grad_norm ({skip:g}). {self._last_good()}; raise "
                    f"train.skip_grad_norm or lower train.lr")
        return out

    def _last_good(self) -> str:
        if ckpt.has_checkpoint(self.out):
            step = ckpt.load_state(self.out)["step"]
            return f"The last good checkpoint (step {step}) in '{self.out}' is intact"
        return "No checkpoint had been written yet, so the run folder was removed"

    def run(self) -> Path:
        cfg, main = self.cfg, self.info.main
        bar = tqdm(total=self.total, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not (cfg.train.progress and main), desc=cfg.preset)
        perm_epoch, perm = -1, None
        t_start = time.perf_counter() - self.elapsed
        self.model.train()
        out_of_time = False
        while self.step < self.total:
            if cfg.train.max_minutes and self._out_of_time(time.perf_counter() - t_start):
                out_of_time = True
                break
            epoch = self.step // self.steps_per_epoch
            if epoch != perm_epoch:
                perm_epoch = epoch
                perm = _permutation(self.data.train_x.shape[0], cfg.train.seed, epoch,
                                    self.device)
            beta = schedules.value_at(cfg.beta, self.step)
            lr_scale = schedules.value_at(cfg.train.lr_schedule, self.step)
            for opt in self.opts.values():
                for group in opt.param_groups:
                    group["lr"] = group["base_lr"] * lr_scale
            x, c = self._batch(self.step, perm)
            out = self._train_step(x, beta, c)
            with torch.no_grad():
                values = logged_values(out)  # one transfer for all of them
                self.window.add(dict(zip(values, torch.stack(
                    [v.detach().float() for v in values.values()]).tolist())))
                if out.indices is not None:
                    q = self.model.bottleneck
                    self.window.add_codes(code_counts(out.indices, q.codebook_size, q.stages))
            self.step += 1
            bar.update(1)
            if self.step % cfg.train.log_every == 0 or self.step == self.total:
                self._log(beta, bar)
            if self.held_out is not None and (self.step % cfg.train.eval_every == 0
                                              or self.step == self.total):
                self._held_out_eval()
            if self.step % cfg.train.checkpoint_every == 0 or self.step == self.total:
                self.elapsed = time.perf_counter() - t_start
                self._checkpoint()
        bar.close()
        self.elapsed = time.perf_counter() - t_start
        if out_of_time:  # no log line here: the window travels in the checkpoint, as a kill's
            self._checkpoint()
            log.warning("train.max_minutes (%g) spent: stopped at step %d of %d; continue with "
                        "--resume and a larger train.max_minutes (or 0)",
                        cfg.train.max_minutes, self.step, self.total)
        if main:
            self._finish(out_of_time)
        dist_.barrier(self.info)
        return self.out

    def _out_of_time(self, elapsed: float) -> bool:
        """Whether the run's training time has reached train.max_minutes (rank 0's clock
        decides for every process, so that all of them stop at the same step)."""
        over = elapsed >= 60 * self.cfg.train.max_minutes
        if self.info.active:
            flag = torch.tensor(float(over), device=self.device)
            torch.distributed.broadcast(flag, 0)
            over = bool(flag.item())
        return over

    def _log(self, beta: float, bar: tqdm) -> None:
        w, now = self.window, time.perf_counter()
        names, sums = list(w.sums), list(w.sums.values())
        if self.info.active:  # log the global batch, as one process would
            t = torch.tensor(sums, dtype=torch.float64, device=self.device)
            torch.distributed.all_reduce(t)
            sums = (t / self.info.world).tolist()
        rec = {"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4)}
        rec.update({name: s / w.counts[name] for name, s in zip(names, sums)})
        rec.update({"beta": beta, "lr": self.opts[MODEL].param_groups[0]["lr"],
                    "samples_per_s": w.n * self.batch / max(now - w.t0, 1e-9)})
        if w.codes is not None:  # codebook usage over the window's batches (all processes)
            counts = w.codes.clone()
            if self.info.active:
                torch.distributed.all_reduce(counts)
            rec.update(usage_metrics(counts))
            if self.model.bottleneck.restarts_done is not None:  # VQ's dead codes re-seeded
                rec["code_restarts"] = self.model.bottleneck.restarts_done
        self.window = Window()
        bar.set_postfix({name: f"{rec[name]:.3g}" for name in names} | {"beta": f"{beta:.3g}"},
                        refresh=False)
        if self.info.main:
            with open(self.out / LOG, "a") as f:
                f.write(json.dumps(rec) + "\n")

    def _held_out_eval(self) -> None:
        """The loss at the final β (so steps compare) on the held-out samples, logged as a
        line of held_out.jsonl (with each latent group's rate and active units, for a
        hierarchy); the best weights so far go to best.safetensors.
        Seeded and on its own random state: training draws the same numbers without it."""
        if not self.info.main:
            return
        cfg = self.cfg
        rd = rate_distortion(self.model, self.held_out, schedules.value_at(cfg.beta, self.total),
                             cfg.train.eval_batch_size, seed=cfg.train.seed, c=self.held_out_c)
        rec = {"step": self.step, "split": cfg.train.eval_split, "loss": rd.loss,
               "distortion": float(rd.distortion.double().mean()),
               "rate": float(rd.rate.double().mean())}
        if rd.groups:  # a hierarchy: each group's rate and active units
            rec.update({f"rate/{g}": float(rd.terms[f"rate/{g}"].double().mean())
                        for g in rd.groups})
            rec.update(active_unit_counts(rd))
        if not math.isfinite(rec["loss"]):
            raise TrainingDiverged(f"the held-out loss became NaN or Inf at step {self.step}. "
                                   f"{self._last_good()}; lower train.lr or check the data")
        if not self.best or rec["loss"] < self.best["loss"]:
            self.best = {"step": self.step, "loss": rec["loss"]}
            ckpt.save_best(self.out, self.model, self.step, rec["loss"])
        with open(self.out / HELD_OUT, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _checkpoint(self) -> None:
        if not self.info.main:
            return
        state = {"step": self.step,
                 "optimizers": {name: opt.state_dict() for name, opt in self.opts.items()},
                 "rng_cpu": torch.get_rng_state(), "window": self.window.state(),
                 "elapsed_s": self.elapsed, "best": self.best}
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        ckpt.save(self.out, self.model, state)

    def _finish(self, out_of_time: bool = False) -> None:
        cfg, d = self.cfg, self.data
        beta = schedules.value_at(cfg.beta, self.total)
        result = evaluate(self.model, d.test_x, beta=beta, batch_size=cfg.train.eval_batch_size,
                          c=covariates.codes(d, cfg.model.covariate, "test"))
        metrics = {"step": self.step, "epochs": round(self.step / self.steps_per_epoch, 4),
                   "train_time_s": round(self.elapsed, 3),
                   "train_samples_per_s": self.step * self.batch / max(self.elapsed, 1e-9),
                   "parameters": self.model.num_parameters(), "test": result.metrics,
                   "test_rate_per_dim": result.rate_per_dim, "warnings": result.warnings}
        if out_of_time:
            metrics["stopped"] = {"reason": "train.max_minutes", "planned_steps": self.total}
        if self.best:
            metrics["best"] = {"step": int(self.best["step"]), "split": cfg.train.eval_split,
                               "loss": self.best["loss"], "file": ckpt.BEST}
        write_json(self.out / METRICS, metrics)
        if cfg.train.figures:
            from xae.viz import write_figures

            write_figures(self.out, self.model, d)
        log.info("run written to %s", self.out)


def train(config: Config | None, out_dir: str | Path, *, resume: bool = False,
          data: Dataset | None = None) -> Path:
    """Train ``config`` into the run folder ``out_dir`` (or continue it with ``resume``).

    Every check (config, data, folder) happens before anything is written. On resume the
    saved config is used when ``config`` is None. Returns the run folder's path.
    """
    out = Path(out_dir)
    cfg = validate(config if config is not None else ckpt.read_config(out))
    info = dist_.setup(cfg.train.device)  # under torchrun, rank 0 alone checks and tidies
    fresh = _prepare_dir(out, resume) if info.main else False
    dist_.barrier(info)
    if not info.main:
        fresh = not (resume and ckpt.has_checkpoint(out))
    data = data if data is not None else load_data(cfg.data)
    try:
        trainer = Trainer(cfg, out, data, resume=not fresh)
    except (MemoryError, RuntimeError) as e:  # torch's allocators raise RuntimeErrors
        if not isinstance(e, (MemoryError, torch.OutOfMemoryError)) \
                and "alloc" not in str(e).lower():
            raise
        raise XaeError("the model does not fit in memory; make it smaller (model.latent_dim, "
                       "model.mlp.hidden, model.conv.channels)") from None
    if trainer.info.main and fresh:
        out.mkdir(parents=True, exist_ok=True)
        ckpt.save_config(out, trainer.model.config)  # with the data's shape filled in
    dist_.barrier(trainer.info)
    try:
        return trainer.run()
    except BaseException:
        if trainer.info.main and not resume and not ckpt.has_checkpoint(out):
            shutil.rmtree(out, ignore_errors=True)  # nothing worth keeping: leave no half run
        raise
    finally:
        # DDP keeps a reference to the process group: drop it first, so that the group (and
        # gloo's worker threads) is torn down now, not while the interpreter shuts down,
        # where a worker thread still holding work can abort the process
        trainer.net = trainer.model
        gc.collect()
        dist_.teardown(trainer.info)
