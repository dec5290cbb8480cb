"""Saving LoRA files and resumable training state, and pruning old saves."""

from __future__ import annotations

import json
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from trainer.engine.errors import EngineError
from trainer.run_outputs import DIFFUSERS_SUFFIX, STATE_SUFFIX
from trainer.textio import atomic_write_text, is_write_leftover


@dataclass
class Progress:
    """Where a run is: what resume needs beyond weights and optimizer."""

    global_step: int = 0
    epoch: int = 0  # 0-based epoch in progress
    batches_in_epoch: int = 0  # batches of `epoch` already consumed
    loss_window: list[float] = field(default_factory=list)
    global_batch: int = 0  # images a batch of this run (x processes); 0 in states saved before it was kept


def trainable_state(models: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{comp}.{name}": p.detach().cpu().clone() for comp, m in models.items()
            for name, p in m.named_parameters() if p.requires_grad}


def load_trainable_state(models: dict[str, torch.nn.Module], state: dict[str, torch.Tensor]) -> None:
    params = {f"{comp}.{name}": p for comp, m in models.items() for name, p in m.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(state))
    if missing:
        raise EngineError(f"save.resume: the state lacks {len(missing)} weights (e.g. {missing[0]})",
                          "Resume with the same network settings (dim, conv_dim, trained parts) as the saved run.")
    for key, p in params.items():
        if p.shape != state[key].shape:
            raise EngineError(f"save.resume: {key} has shape {tuple(state[key].shape)}, the network {tuple(p.shape)}",
                              "Resume with the same network_dim and conv_dim as the saved run.")
        p.data.copy_(state[key].to(p.device, p.dtype))


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(folder: Path, *, models, optimizer, scheduler, progress: Progress, extra: dict | None = None) -> Path:
    """Write the state into a temp folder, then swap it in, so a kill never leaves a half state. `extra`: what
    else the trained set needs to resume exactly (a Dreambooth run's EMA weights)."""
    tmp = folder.with_name(folder.name + f".tmp{int(time.time() * 1000)}")
    tmp.mkdir(parents=True)
    torch.save(trainable_state(models), tmp / "adapter.pt")
    if extra:
        torch.save(extra, tmp / "extra.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
               tmp / "optim.pt")
    atomic_write_text(tmp / "progress.json", json.dumps(asdict(progress)))
    return swap_in(tmp, folder)


def swap_in(tmp: Path, folder: Path) -> Path:
    """Put the finished folder `tmp` in the place of `folder` (the old one is kept as ….old until then, which
    recover_interrupted_saves restores after a kill between the two renames)."""
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def recover_interrupted_saves(folder: Path) -> list[str]:
    """Undo what a kill during a save left in `folder`; one note per thing done (for a warning event).

    Removes atomic-write temp files and half-written state or diffusers folders (…-state.tmp<ms>). A …-state.old beside
    its …-state is removed; one without it is the only copy (killed between save_state's two renames), so it
    is renamed back."""
    notes: list[str] = []
    if not Path(folder).is_dir():
        return notes
    for path in sorted(Path(folder).iterdir()):
        name = path.name
        if path.is_file() and is_write_leftover(name):
            path.unlink(missing_ok=True)
            notes.append(f"removed {path}, a file left by an interrupted save")
        elif path.is_dir() and re.fullmatch(rf".+({STATE_SUFFIX}|{DIFFUSERS_SUFFIX})\.tmp\d+", name):
            shutil.rmtree(path, ignore_errors=True)
            notes.append(f"removed {path}, a folder left half-written by an interrupted save")
        elif path.is_dir() and name.endswith((STATE_SUFFIX + ".old", DIFFUSERS_SUFFIX + ".old")):
            current = path.with_name(name[: -len(".old")])
            if current.exists():
                shutil.rmtree(path, ignore_errors=True)
                notes.append(f"removed {path}, the previous state an interrupted save had replaced")
            else:
                path.rename(current)
                notes.append(f"restored {current} from {path.name}: a save was interrupted mid-swap")
    return notes


def load_state(folder: Path, *, models, optimizer, scheduler) -> Progress:
    if not (folder / "progress.json").is_file():
        raise EngineError(f"save.resume: {folder} is not a saved state (no progress.json)",
                          "Pick a folder ending in -state that a run with save_state wrote.")
    load_trainable_state(models, torch.load(folder / "adapter.pt", map_location="cpu"))
    blob = torch.load(folder / "optim.pt", map_location="cpu", weights_only=False)
    try:
        optimizer.load_state_dict(blob["optimizer"])
    except ValueError as exc:  # torch: "loaded state dict has a different number of parameter groups" (or sizes)
        raise EngineError(
            f"save.resume: the saved optimizer has other learning-rate groups than this run ({exc})",
            "Resume with the learning-rate settings of the saved run: the same text_encoder_lr (one rate or two), "
            "unet_lr, block weights and trained parts (network_train_unet_only, a rate of 0). A state saved before "
            "SDXL's text encoders got a group each cannot resume; start from its LoRA with network_weights.") from None
    scheduler.load_state_dict(blob["scheduler"])
    set_rng_state(blob["rng"])
    return Progress(**json.loads((folder / "progress.json").read_text(encoding="utf-8")))


def load_extra(folder: Path) -> dict:
    """The trained set's extra state (EMA weights: tensors and numbers, so it loads with weights_only)."""
    path = Path(folder) / "extra.pt"
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else {}


def prune(saved: list[Path], keep: int, protected: set = frozenset()) -> list[Path]:
    """Delete all but the newest `keep` of `saved` (oldest first; a Dreambooth save's diffusers folder too, not
    its state: see prune_states) and drop them from the list. Only files this run wrote are ever passed in, so
    other runs' files in a shared output folder are safe. `protected` files (the lowest validation loss) stay, in
    the list too."""
    if keep <= 0 or len(saved) <= keep:
        return []
    removed = [f for f in saved[:-keep] if f not in protected]
    saved[:] = [f for f in saved if f not in removed]
    for f in removed:
        f.unlink(missing_ok=True)
        shutil.rmtree(f.with_name(f.stem + DIFFUSERS_SUFFIX), ignore_errors=True)
    return removed


def prune_states(saved: list[Path], keep: int, protected: set = frozenset()) -> None:
    """Delete all but the newest `keep` state folders of `saved` (oldest first) and drop them from the list: states
    are counted apart from their files (save_last_n_epochs_state), as sd-scripts counts them. The state of a
    `protected` file (the lowest validation loss, as in prune) stays, so the best point can be resumed from."""
    if keep <= 0 or len(saved) <= keep:
        return
    kept = {f.with_name(f.stem + STATE_SUFFIX) for f in protected}
    removed = [folder for folder in saved[:-keep] if folder not in kept]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    saved[:] = [f for f in saved if f not in removed]
