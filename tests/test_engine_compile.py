"""speed.compile_blocks: the model's repeated blocks are compiled (regionally) and still train, and inductor
keeps its compiled code in the workspace so the next run reuses it."""

from __future__ import annotations

import os

import pytest
import torch

from tests.engine_helpers import losses, make_dataset, save_tiny_sd15, tiny_config
from trainer.engine import session as session_mod
from trainer.engine import speed
from trainer.engine.run import train

VAR = "TORCHINDUCTOR_CACHE_DIR"


@pytest.fixture
def no_cache_choice(monkeypatch):
    """No cache folder chosen by the user; whatever the test sets is undone afterwards."""
    for name in (VAR, "TORCHINDUCTOR_FX_GRAPH_CACHE", "TORCHINDUCTOR_AUTOGRAD_CACHE"):
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)


@pytest.mark.slow
def test_repeated_blocks_are_compiled_and_the_run_trains(tmp_path, monkeypatch, no_cache_choice):
    model, data = save_tiny_sd15(tmp_path / "model"), make_dataset(tmp_path / "data", n=4)
    monkeypatch.setattr(speed, "COMPILE_BACKEND", "aot_eager")  # dynamo + autograd tracing, no C++ build
    seen, real_setup = [], session_mod.Session.setup
    monkeypatch.setattr(session_mod.Session, "setup", lambda self: (seen.append(self), real_setup(self))[-1])
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    cfg = tiny_config(model, data, speed__compile_blocks=True, training__max_train_steps=3)
    assert train(cfg, tmp_path / "run", model_cache=tmp_path / "ws" / "models" / "hub") == 0
    blocks = [m for m in seen[0].models.unet.modules() if type(m).__name__ == "BasicTransformerBlock"]
    assert blocks and all(b._compiled_call_impl is not None for b in blocks)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # they ran compiled, not skipped
    run_losses = losses(tmp_path / "run")
    assert len(run_losses) == 3 and all(0 < x < 10 for x in run_losses)
    assert os.environ[VAR] == str((tmp_path / "ws" / "models" / speed.COMPILE_CACHE).resolve())
    torch._dynamo.reset()


@pytest.mark.slow
def test_inductor_writes_its_cache_into_the_workspace(tmp_path, no_cache_choice):
    folder = speed.use_compile_cache(tmp_path / "models")
    assert folder == (tmp_path / "models" / speed.COMPILE_CACHE).resolve()
    torch._dynamo.reset()
    compiled = torch.compile(lambda x: (x * 2).sin() + 1)
    assert torch.allclose(compiled(torch.ones(3)), torch.ones(3).mul(2).sin() + 1)
    torch._dynamo.reset()
    assert any(p.is_file() for p in folder.rglob("*"))


def test_a_cache_folder_the_user_chose_wins(tmp_path, monkeypatch, no_cache_choice):
    monkeypatch.setenv(VAR, str(tmp_path / "mine"))
    assert speed.use_compile_cache(tmp_path / "models") == tmp_path / "mine"
    assert not (tmp_path / "models").exists()


def test_sd_scripts_torch_compile_imports_as_this_switch():
    from trainer.config.kohya import export_kohya, import_kohya

    cfg = import_kohya({"torch_compile": True})
    assert cfg.speed.compile_blocks and export_kohya(cfg)["torch_compile"] is True
