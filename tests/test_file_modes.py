"""Atomic writes keep a file's permissions (a ComfyUI service under another account must still read the
LoRA and captions), and what a kill during a save leaves behind is cleaned up at the next run start."""

from __future__ import annotations

import os
import stat

import pytest

from trainer.textio import atomic_write_bytes, atomic_write_text


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    def set_to(value: int) -> None:
        os.umask(value)

    old = os.umask(0o022)
    yield set_to
    os.umask(old)


@pytest.mark.parametrize("original", [0o644, 0o640, 0o664, 0o600])
def test_rewrite_keeps_the_original_mode(tmp_path, umask, original):
    caption = tmp_path / "a.txt"
    caption.write_text("old", encoding="utf-8")
    os.chmod(caption, original)
    atomic_write_text(caption, "new, tags")
    assert caption.read_text(encoding="utf-8") == "new, tags"
    assert mode(caption) == original


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    atomic_write_bytes(tmp_path / "lora.safetensors", b"x")
    assert mode(tmp_path / "lora.safetensors") == expected


def test_lora_save_is_readable_by_others(tmp_path, umask):
    import torch

    from trainer.networks.save import save_lora

    path = save_lora(tmp_path / "x.safetensors", {"lora_unet_a.alpha": torch.tensor(1.0)}, {})
    assert mode(path) == 0o644


def test_interrupted_saves_are_cleaned_and_a_swapped_state_restored(tmp_path):
    from trainer.engine.checkpoint import recover_interrupted_saves

    out = tmp_path / "output"
    out.mkdir()
    (out / ".lora.safetensors.k2j3h4.tmp").write_bytes(b"half")  # killed inside atomic_write_bytes
    (out / "lora-state.tmp1733312345678").mkdir()  # killed while writing a state
    (out / "lora-state.tmp1733312345678" / "adapter.pt").write_bytes(b"half")
    (out / "kept-state").mkdir()
    (out / "kept-state.old").mkdir()  # killed after the swap, before removing the old one
    (out / "swapped-state.old").mkdir()  # killed between the two renames: the only copy
    (out / "swapped-state.old" / "progress.json").write_text("{}")
    (out / "notes.tmp").write_text("the user's own file")  # not ours: no leading dot
    (out / "lora.safetensors").write_bytes(b"whole")
    notes = recover_interrupted_saves(out)
    assert sorted(p.name for p in out.iterdir()) == ["kept-state", "lora.safetensors", "notes.tmp", "swapped-state"]
    assert (out / "swapped-state" / "progress.json").is_file()
    assert len(notes) == 4 and all(str(out) in n for n in notes)
    assert recover_interrupted_saves(out) == []
    assert recover_interrupted_saves(tmp_path / "missing") == []


def test_run_start_cleans_the_output_folder_before_loading_anything(tmp_path, monkeypatch):
    from trainer.config import TrainConfig, apply_overlay
    from trainer.engine import session as session_module

    out = tmp_path / "out"
    out.mkdir()
    (out / ".lora.safetensors.abc.tmp").write_bytes(b"half")
    (out / "lora-state.old").mkdir()  # the only copy of a state: restored, not lost
    warnings = []

    class Reporter:
        def warning(self, message, hint=""):
            warnings.append(message)

        def status(self, message):
            pass

    def stop_here(*a, **kw):
        raise KeyboardInterrupt  # setup got past the cleanup; nothing more is needed

    monkeypatch.setattr(session_module, "load_models", stop_here)
    cfg = apply_overlay(TrainConfig(), {"save": {"output_dir": str(out)}})
    with pytest.raises(KeyboardInterrupt):
        session_module.Session(cfg, tmp_path / "run", Reporter(), tmp_path / "cache", lambda: False).setup()
    assert sorted(p.name for p in out.iterdir()) == ["lora-state"]
    assert len([w for w in warnings if str(out) in w]) == 2  # each said, as a warning event
