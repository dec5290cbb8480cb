"""Reports a run through its files: events.jsonl, TensorBoard scalars, train.log and a console line."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from pathlib import Path

from trainer.events import EventWriter


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def summary_lines(s: dict) -> list[str]:
    modules = ", ".join(f"{n} {part}" for part, n in s["modules"].items())
    return [f"device: {s['device']}; precision: {s['precision']}; attention: {s['attention']}",
            f"{s.get('module_kind', 'adapter')} modules: {modules} ({sum(s['modules'].values())} in all); "
            f"trainable parameters: {s['trainable_params']:,}",
            f"steps per epoch: {s['steps_per_epoch']}; total steps: {s['total_steps']} ({s['epochs']} epochs)"]


class _NoCurves:
    """Stands in for TensorBoard's SummaryWriter when log_with is "none"."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    add_image = close = add_scalar


_NO_CURVES = _NoCurves()


class _NoEvents:
    """Stands in for the EventWriter in the processes of a multi-process run other than the first."""

    def emit(self, type_: str, **fields) -> dict:
        return {"type": type_, **fields}

    def close(self) -> None:
        pass


class Reporter:
    def __init__(self, run_dir: Path, tb_dir: Path | None, console=sys.stdout, quiet: bool = False,
                 wandb: dict | None = None, config_text: str | None = None):
        """`quiet`: keep the bookkeeping (loss window) but write nothing: the other processes of a
        multi-process run, so the run has one events stream, one log and one TensorBoard folder. `wandb`:
        wandb.init's arguments when the curves go there too; `config_text`: the settings for TensorBoard's Text
        tab (logging.log_config; both from trainer.engine.trackers)."""
        self.run_dir = Path(run_dir)
        self.events = _NoEvents() if quiet else EventWriter(self.run_dir)
        self.log = self._make_logger(None if quiet else self.run_dir / "train.log")
        self.console = open(os.devnull, "w") if quiet else console  # noqa: SIM115 (closed in close())
        self._quiet = quiet
        self.tb_dir = None if quiet else tb_dir
        self.wandb = None if quiet else wandb
        self.config_text = config_text
        self._tb = None
        self._window: deque[float] = deque(maxlen=100)
        self._t0 = None
        self._step0 = 0

    @staticmethod
    def _make_logger(path: Path | None) -> logging.Logger:
        if path is None:
            logger = logging.getLogger("danlu.run.quiet")
            logger.propagate = False
            logger.handlers[:] = [logging.NullHandler()]
            return logger
        logger = logging.getLogger(f"danlu.run.{path.parent.name}")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.handlers[:] = [handler]
        return logger

    @property
    def tb(self):
        """The trackers (log_with) as one SummaryWriter-like object, started at their first use."""
        if self.tb_dir is None and self.wandb is None:  # logging off: curves and images go nowhere
            return _NO_CURVES
        if self._tb is None:
            from trainer.engine.trackers import Fanout

            trackers = []
            if self.tb_dir is not None:
                from torch.utils.tensorboard import SummaryWriter

                trackers.append(SummaryWriter(str(self.tb_dir)))
                if self.config_text:
                    trackers[-1].add_text("config", self.config_text, 0)
            if self.wandb is not None:
                trackers += self._start_wandb()
            self._tb = Fanout(trackers) if len(trackers) > 1 else trackers[0] if trackers else _NO_CURVES
        return self._tb

    def _start_wandb(self) -> list:
        """[the wandb tracker], or [] with a warning: a tracker that cannot start must not end the run."""
        from trainer.engine.trackers import WandbCurves

        try:
            return [WandbCurves(self.wandb)]
        except Exception as exc:  # wandb raises its own errors (not logged in, no network...)
            self.warning(f"wandb did not start ({type(exc).__name__}: {exc}); the curves go to events only",
                         "Run `wandb login` (or set WANDB_API_KEY), or set WANDB_MODE=offline and "
                         "`wandb sync` the run folder's wandb/ later.")
            return []

    @property
    def loss_window(self) -> list[float]:
        """The recent losses behind avg_loss; saved with the state so a resumed run's average continues."""
        return list(self._window)

    def restore_loss_window(self, losses: list[float]) -> None:
        self._window.extend(losses)

    def status(self, message: str, fraction: float | None = None) -> None:
        self.events.emit("status", message=message, fraction=fraction)
        self.log.info(message)
        print(f"[danlu] {message}", file=self.console, flush=True)

    def warning(self, message: str, hint: str = "", **extra) -> None:
        """`extra` goes into the event as is (the fit signal: fit, message_zh, best_path, best_epoch)."""
        self.events.emit("warning", message=message, hint=hint, **extra)
        self.log.warning(f"{message} (hint: {hint})" if hint else message)
        print(f"[danlu] warning: {message}" + (f"\n[danlu] hint: {hint}" if hint else ""), file=self.console,
              flush=True)

    def error(self, message: str, hint: str = "") -> None:
        self.events.emit("error", message=message, hint=hint)
        self.log.error(f"{message} {hint}".strip())
        print(f"[danlu] error: {message}\n[danlu] hint: {hint}", file=self.console, flush=True)

    def started(self, *, total_steps: int, epochs: int, steps_per_epoch: int, images: int, device: str,
                family: str, start_step: int = 0, summary: dict | None = None) -> None:
        """The run begins; `summary` (trainer.engine.header.start_summary) is stated once, in the log and console."""
        self._t0, self._step0 = time.time(), start_step
        self.events.emit("started", total_steps=total_steps, epochs=epochs, steps_per_epoch=steps_per_epoch,
                         images=images, device=device, family=family, start_step=start_step, summary=summary)
        lines = [f"training {total_steps} steps, {epochs} epochs, {images} images on {device}"]
        lines += summary_lines(summary) if summary else []
        for line in lines:
            self.log.info(line)
            print(f"[danlu] {line}", file=self.console, flush=True)

    def progress(self, *, step: int, total: int, epoch: int, epochs: int, loss: float, lrs: dict[str, float],
                 vram_gb: float | None = None, grad_norms: dict[str, float] | None = None,
                 max_norm: tuple[int, float, float] | None = None, at: float | None = None) -> None:
        """`at`: when the step ended, if it is reported later (losses read back N steps at a time)."""
        at = time.time() if at is None else at
        self._window.append(loss)
        avg = sum(self._window) / len(self._window)
        elapsed = at - (self._t0 or at)
        done = step - self._step0
        it_s = done / elapsed if elapsed > 0 and done > 0 else None
        eta = (total - step) / it_s if it_s else None
        norms = dict(zip(("keys_scaled", "average_key_norm", "max_key_norm"), max_norm, strict=True)) if max_norm else {}
        self.events.emit("progress", step=step, total=total, epoch=epoch, epochs=epochs, loss=loss, avg_loss=avg,
                         lr=lrs, it_s=it_s, eta_s=eta, vram_gb=vram_gb, **norms, time=round(at, 3))
        for name, value in norms.items():  # scale_weight_norms, logged per step as sd-scripts does
            self.tb.add_scalar(f"max_norm/{name}", value, step)
        self.tb.add_scalar("loss/current", loss, step)
        self.tb.add_scalar("loss/average", avg, step)
        self.tb.add_scalar("epoch", epoch, step)
        for part, value in lrs.items():
            self.tb.add_scalar(f"lr/{part}", value, step)
        for part, value in (grad_norms or {}).items():  # before clipping: spikes show instability early
            self.tb.add_scalar(f"grad_norm/{part}", value, step)
        speed = f"{it_s:.2f} it/s" if it_s else "- it/s"
        if vram_gb is not None:
            speed += f" {vram_gb:.1f} GB"
        line = (f"step {step}/{total} epoch {epoch}/{epochs} loss {loss:.4f} avg {avg:.4f} {speed} "
                f"eta {_fmt_eta(eta)}")
        if norms:
            line += f" keys scaled {norms['keys_scaled']}, mean key norm {norms['average_key_norm']:.4f}"
        self.log.info(line)
        print(f"[danlu] {line}", file=self.console, flush=True)

    def validation(self, *, step: int, epoch: int, loss: float) -> None:
        self.events.emit("validation", step=step, epoch=epoch, loss=loss)
        self.tb.add_scalar("loss/validation", loss, step)
        self.log.info(f"validation loss {loss:.5f} at step {step}")
        print(f"[danlu] validation loss {loss:.5f} at step {step}", file=self.console, flush=True)

    def sample(self, *, step: int, epoch: int, path: Path, prompt: str, image) -> None:
        import numpy as np

        self.events.emit("sample", step=step, epoch=epoch, path=str(path), prompt=prompt)
        self.tb.add_image(f"samples/{path.stem.rsplit('_', 1)[-1]}", np.asarray(image), step, dataformats="HWC")
        self.log.info(f"sample {path.name}: {prompt}")

    def saved(self, *, step: int, epoch: int, path: Path, kind: str) -> None:
        self.events.emit("saved", step=step, epoch=epoch, path=str(path), kind=kind)
        self.log.info(f"saved {kind} {path}")
        print(f"[danlu] saved {kind}: {path}", file=self.console, flush=True)

    def end(self, kind: str, *, step: int, outputs: list[str], message: str = "") -> None:
        self.events.emit(kind, step=step, outputs=outputs, message=message)
        self.log.info(f"{kind} at step {step}. {message}".strip())
        print(f"[danlu] {kind} at step {step}", file=self.console, flush=True)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        self.events.close()
        for handler in self.log.handlers:
            handler.close()
        if self._quiet:
            self.console.close()
