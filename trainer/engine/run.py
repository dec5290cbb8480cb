"""Entry point of a training run: config checks, signals, the session, and the final event."""

from __future__ import annotations

import os
import signal
import time
import traceback
from pathlib import Path

from trainer.config import TrainConfig, check, errors_of, load_config, save_config
from trainer.engine.errors import EngineError, hint_for
from trainer.engine.launch import launch_rank
from trainer.engine.readback import LossExploded
from trainer.engine.reporter import Reporter
from trainer.engine.trackers import config_text, wandb_settings
from trainer.events import EVENTS, PID_FILE, STOP_FILE


def default_model_cache(run_dir: Path) -> Path:
    """<workspace>/models/hub when the run sits in <workspace>/runs/<id>, else ~/.cache/danlu."""
    run_dir = Path(run_dir).resolve()
    if run_dir.parent.name == "runs":
        return run_dir.parent.parent / "models" / "hub"
    return Path.home() / ".cache" / "danlu" / "hub"


def _prepare_run_dir(run_dir: Path, cfg: TrainConfig) -> None:
    """config.toml always holds what this run uses (an older, different one is kept as a backup)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "config.toml"
    if config.exists() and load_config(config) != cfg:
        config.rename(run_dir / f"config.toml.{time.strftime('%Y%m%d-%H%M%S')}.bak")
    if not config.exists():
        save_config(cfg, config)
    _drop_stale_stop(run_dir)
    (run_dir / PID_FILE).write_text(str(os.getpid()), encoding="utf-8")


def _drop_stale_stop(run_dir: Path) -> None:
    """A STOP written before this engine started is honoured (Stop pressed while the process was launching),
    unless an earlier run in this folder wrote events after it: then it was that run's request (a run that
    was killed before it could consume it)."""
    stop, events = run_dir / STOP_FILE, run_dir / EVENTS
    try:
        if stop.stat().st_mtime < events.stat().st_mtime:
            stop.unlink()
    except FileNotFoundError:
        pass


def tensorboard_dir(cfg: TrainConfig, run_dir: Path) -> Path | None:
    """<logging_dir or run/tb>/<log_prefix><tracker name or, under a shared logging_dir, the run id>; None
    when TensorBoard is not among the trackers (log_with "none" or "wandb")."""
    lg = cfg.logging
    if lg.log_with in ("none", "wandb"):
        return None
    base = Path(lg.logging_dir) if lg.logging_dir else run_dir / "tb"
    name = lg.log_tracker_name or (run_dir.name if lg.logging_dir else "")
    return base / (lg.log_prefix + name) if lg.log_prefix or name else base


def _install_signal_handlers() -> dict:
    flag = {"stop": False}

    def handler(signum, frame):
        if flag["stop"]:  # a second Ctrl+C means "now"
            raise KeyboardInterrupt
        flag["stop"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (e.g. called from a test runner thread)
            pass
    return flag


def train(cfg: TrainConfig, run_dir: Path, model_cache: Path | None = None) -> int:
    """Run one training; returns the process exit code (0 finished/stopped, 1 failed, 2 invalid config)."""
    from trainer.engine.session import Session

    run_dir = Path(run_dir)
    main = launch_rank() == 0  # several processes (accelerate launch): the first one writes the run's files
    if main:
        _prepare_run_dir(run_dir, cfg)
    rep = Reporter(run_dir, tensorboard_dir(cfg, run_dir), quiet=not main, wandb=wandb_settings(cfg, run_dir),
                   config_text=config_text(cfg))
    flag = _install_signal_handlers()
    session = None
    try:
        findings = check(cfg)
        errors = errors_of(findings)
        for f in findings:
            if f.level == "warning":
                rep.warning(f.text("en"))
        if errors:
            rep.error("the configuration is invalid: " + "; ".join(f.text("en") for f in errors),
                      "Fix the fields named above.")
            return 2
        session = Session(cfg, run_dir, rep, model_cache or default_model_cache(run_dir), lambda: flag["stop"])
        outcome = session.run()
        # Every rank waits here for the main one to finish saving, so the process group is destroyed (finally:
        # end_training) by all ranks at the end, not by a rank that finished early while its peer still worked:
        # that early rank aborted once more at exit (SIGABRT, "terminate called without an active exception")
        # after end_training alone. Only on success: after a failure the launcher stops the other ranks.
        session.acc.wait_for_everyone()
        nothing = outcome == "stopped" and not session.outputs
        rep.end(outcome, step=session.progress.global_step, outputs=session.outputs,
                message="stopped before the first step: nothing was trained or saved" if nothing else "")
        return 0
    except LossExploded as exc:
        rep.error(exc.message, exc.hint)
        return 1
    except EngineError as exc:
        rep.error(exc.message, exc.hint)
        return 1
    except KeyboardInterrupt:
        rep.error("interrupted twice: stopped without saving", "Press Ctrl+C once to stop with a save.")
        return 130
    except Exception as exc:  # the user must see any failure in the page, not only in a console
        rep.log.error(traceback.format_exc())
        rep.error(f"{type(exc).__name__}: {exc}", hint_for(exc))
        return 1
    finally:
        rep.close()
        if getattr(session, "acc", None) is not None:
            # Destroys the process group of a several-process run: left to the interpreter's exit, gloo's threads
            # could still run as the process ended, and a rank of a finished run aborted (SIGABRT, "terminate
            # called without an active exception"), so the launcher reported a run that had saved its files as
            # failed (seen once in a full test run). A no-op in one process.
            session.acc.end_training()
        if main:
            (run_dir / STOP_FILE).unlink(missing_ok=True)  # consumed, or moot now that the run is over
            (run_dir / PID_FILE).unlink(missing_ok=True)
