"""End-to-end training on a tiny SD1.5 model: the file format, loading in diffusers, loss, resume, NaN, and stop
requests at every moment of a run (before start, loading, caching, sampling, saving: each written through a
reporter hook, as the UI would from outside, must end the run "stopped" at the next safe point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.engine.reporter import Reporter
from trainer.engine.run import train
from trainer.events import STOP_FILE, read_events, request_stop
from trainer.networks.save import read_lora

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"))


def events_of(run_dir: Path) -> list[dict]:
    return read_events(run_dir)[0]


@pytest.fixture(scope="module")
def two_epoch_run(tiny_model, dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = tiny_config(tiny_model, dataset, sampling__sample_prompts="zk, circle --d 3",
                      sampling__sample_every_n_epochs=1, sampling__sample_width=64, sampling__sample_height=64,
                      sampling__sample_steps=3)
    assert train(cfg, run_dir) == 0
    return run_dir


def test_two_epochs_write_kohya_files_with_true_alpha_and_metadata(two_epoch_run):
    out = two_epoch_run / "output"
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["t-000001.safetensors", "t.safetensors"]
    tensors, meta = read_lora(out / "t.safetensors")
    modules = {k.rsplit(".", 2)[0] if ".lora_" in k else k.rsplit(".", 1)[0] for k in tensors}
    assert all(m.startswith(("lora_unet_", "lora_te_")) for m in modules)
    for m in modules:
        assert {f"{m}.lora_down.weight", f"{m}.lora_up.weight", f"{m}.alpha"} <= set(tensors)
        assert tensors[f"{m}.alpha"].item() == 2.0 and tensors[f"{m}.alpha"].dtype == torch.float32
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj" in modules
    assert any(m.endswith("attn1_to_q") for m in modules)
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "2.0"
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_num_epochs"] == "2"
    assert json.loads(meta["ss_tag_frequency"])["5_zk"]["zk"] == 6
    ends = [e for e in events_of(two_epoch_run) if e["type"] == "finished"]
    assert ends and ends[0]["outputs"][-1].endswith("t.safetensors")


def test_progress_events_and_samples(two_epoch_run):
    events = events_of(two_epoch_run)
    progress = [e for e in events if e["type"] == "progress"]
    started = next(e for e in events if e["type"] == "started")
    assert started["total_steps"] == 30 == len(progress)  # 6 images x 5 repeats / batch 2, 2 epochs
    last = progress[-1]
    assert {"step", "total", "epoch", "loss", "avg_loss", "lr", "it_s", "eta_s"} <= set(last)
    samples = [e for e in events if e["type"] == "sample"]
    assert len(samples) == 2 and all(Path(s["path"]).is_file() for s in samples)
    assert list((two_epoch_run / "tb").glob("events.out.tfevents.*"))


def _pipe(model: Path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _render(pipe, **kw) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return pipe("zk, circle", num_inference_steps=2, height=64, width=64, generator=g, output_type="pt", **kw).images


def test_file_loads_in_diffusers_and_changes_output(two_epoch_run, tiny_model, caplog):
    pipe = _pipe(tiny_model)
    base = _render(pipe)
    caplog.clear()
    pipe.load_lora_weights(str(two_epoch_run / "output" / "t.safetensors"), adapter_name="t")
    # transformers' load report lists the frozen base weights as "missing" from any adapter-only load (how
    # often depends on its once-per-process logging); no LoRA key may be missing, unexpected or dropped.
    complaints = [line for r in caplog.records for line in r.getMessage().splitlines()
                  if any(w in line.lower() for w in ("unexpected", "missing", "not used"))
                  and ("lora" in line.lower() or "unexpected" in line.lower())]
    assert not complaints, complaints
    with_lora = _render(pipe)
    assert (with_lora - base).abs().max() > 1e-3
    pipe.set_adapters(["t"], [0.0])
    assert torch.allclose(_render(pipe), base, atol=1e-5)


def _losses(run_dir: Path) -> list[float]:
    return [e["loss"] for e in events_of(run_dir) if e["type"] == "progress"]


def test_loss_falls_on_a_tiny_overfit_set(tiny_model, tmp_path):
    data = make_dataset(tmp_path / "data", n=2, folder="20_zk")
    # 80 steps: the last quarter's mean was 0.87-0.89 of the first's over seeds 1-3 (160 steps: 0.88-0.90)
    cfg = tiny_config(tiny_model, data, training__max_train_epochs=4, optimizer__learning_rate=1e-2,
                      training__seed=1, network__network_dim=8, network__network_alpha=8.0)
    assert train(cfg, tmp_path / "run") == 0
    losses = _losses(tmp_path / "run")
    assert len(losses) == 80
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < first * 0.92, (first, last)


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(run_dir / "output" / "t.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_resume_from_state_equals_uninterrupted_run(tiny_model, dataset, tmp_path):
    full = tiny_config(tiny_model, dataset, training__max_train_epochs=3, network__network_dropout=0.0,
                       caption__shuffle_caption=True, augment__flip_aug=True)
    assert train(full, tmp_path / "full") == 0
    first = tiny_config(tiny_model, dataset, training__max_train_epochs=3, caption__shuffle_caption=True,
                        augment__flip_aug=True, save__save_state=True, training__max_train_steps=20)
    assert train(first, tmp_path / "first") == 0  # stops mid-epoch 2 at step 20 and saves its state
    state = tmp_path / "first" / "output" / "t-state"
    assert (state / "progress.json").is_file()
    second = tiny_config(tiny_model, dataset, training__max_train_epochs=3, caption__shuffle_caption=True,
                         augment__flip_aug=True, save__resume=str(state))
    assert train(second, tmp_path / "second") == 0
    assert _losses(tmp_path / "second") == _losses(tmp_path / "full")[20:]
    a, b = _final_weights(tmp_path / "full"), _final_weights(tmp_path / "second")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_stop_request_saves_a_loadable_file_and_reports_stopped(tiny_model, dataset, tmp_path):
    from trainer.config import save_config

    cfg = tiny_config(tiny_model, dataset, training__max_train_epochs=200)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_config(cfg, run_dir / "config.toml")
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "train", "--config", str(run_dir / "config.toml"),
                             "--run-dir", str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and not any(e["type"] == "progress" and e["step"] >= 3 for e in events_of(run_dir)):
        time.sleep(0.2)
    request_stop(run_dir)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert b"[danlu] step" in out  # a readable progress line for remote shells
    end = events_of(run_dir)[-1]
    assert end["type"] == "stopped" and end["step"] < 200 * 15
    tensors, _ = read_lora(run_dir / "output" / "t.safetensors")
    assert any(k.endswith("lora_up.weight") and t.abs().sum() > 0 for k, t in tensors.items())
    assert (run_dir / "output" / "t-state" / "progress.json").is_file()


def test_nan_loss_stops_with_an_error_and_keeps_the_last_good_save(tiny_model, dataset, tmp_path, monkeypatch):
    from trainer.engine import noise

    real, calls = noise.per_sample_loss, {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 20 else loss

    monkeypatch.setattr(noise, "per_sample_loss", poisoned)
    cfg = tiny_config(tiny_model, dataset, training__max_train_epochs=3)
    assert train(cfg, tmp_path / "run") == 1
    end = events_of(tmp_path / "run")[-1]
    assert end["type"] == "error" and "nan" in end["message"].lower() and "learning rate" in end["hint"]
    assert (tmp_path / "run" / "output" / "t-000001.safetensors").is_file()
    assert not (tmp_path / "run" / "output" / "t.safetensors").exists()


def test_corrupt_image_is_reported_and_training_goes_on(tiny_model, tmp_path):
    data = make_dataset(tmp_path / "data", n=4)
    bad = data / "5_zk" / "zz_broken.png"
    good = (data / "5_zk" / "000.png").read_bytes()
    bad.write_bytes(good[:60])  # a valid header, then nothing
    cfg = tiny_config(tiny_model, data, training__max_train_epochs=1)
    assert train(cfg, tmp_path / "run") == 0
    warnings = [e["message"] for e in events_of(tmp_path / "run") if e["type"] == "warning"]
    assert any("zz_broken.png" in w for w in warnings), warnings
    assert (tmp_path / "run" / "output" / "t.safetensors").is_file()


# Previews of one prompt, small and quick.
PREVIEW = {"sampling__sample_prompts": "zk", "sampling__sample_width": 64, "sampling__sample_height": 64,
           "sampling__sample_steps": 2}


def long_config(model, data, **overrides):
    # 20 epochs of 15 steps: a run that ignored the stop request ends "finished" at step 300.
    return tiny_config(model, data, training__max_train_epochs=20, **overrides)


def stop_when(monkeypatch, method: str, run_dir: Path, when=lambda *a, **k: True) -> None:
    """Write STOP from inside Reporter.<method> the first time `when(...)` holds (an outside click then)."""
    original = getattr(Reporter, method)

    def hooked(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if when(*args, **kwargs) and not (run_dir / ".asked").exists():
            (run_dir / ".asked").touch()
            request_stop(run_dir)
        return result

    monkeypatch.setattr(Reporter, method, hooked)


def test_stop_written_before_start_is_honoured(tiny_model, dataset, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    request_stop(run_dir)  # Stop pressed between the UI launching the engine and the engine starting
    assert train(long_config(tiny_model, dataset), run_dir) == 0
    events = events_of(run_dir)
    assert events[-1]["type"] == "stopped" and "nothing was trained" in events[-1]["message"]
    assert not [e for e in events if e["type"] in ("progress", "started")]
    assert not (run_dir / STOP_FILE).exists()  # consumed: a later run in this folder is not stopped by it


def test_stop_while_loading_ends_before_caching(tiny_model, dataset, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    stop_when(monkeypatch, "status", run_dir, lambda message, *a, **k: message.startswith("loading"))
    assert train(long_config(tiny_model, dataset, speed__cache_latents=True), run_dir) == 0
    events = events_of(run_dir)
    assert events[-1]["type"] == "stopped"
    assert not [e for e in events if e["type"] == "status" and e["message"].startswith("caching")]
    assert not [e for e in events if e["type"] == "progress"]


def test_stop_while_caching_ends_before_the_first_step(tiny_model, dataset, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    stop_when(monkeypatch, "status", run_dir, lambda message, *a, **k: message.startswith("caching latents 1/"))
    cfg = long_config(tiny_model, dataset, speed__cache_latents=True, speed__vae_batch_size=1)
    assert train(cfg, run_dir) == 0
    events = events_of(run_dir)
    assert events[-1]["type"] == "stopped"
    caching = [e for e in events if e["type"] == "status" and e["message"].startswith("caching latents ")]
    assert len(caching) < 6  # stopped inside the cache loop, not after all six images
    assert not [e for e in events if e["type"] == "progress"]


def test_stop_while_sampling_saves_and_ends_after_that_step(tiny_model, dataset, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    stop_when(monkeypatch, "sample", run_dir)
    cfg = long_config(tiny_model, dataset, sampling__sample_every_n_steps=2, **PREVIEW)
    assert train(cfg, run_dir) == 0
    end = events_of(run_dir)[-1]
    assert end["type"] == "stopped" and end["step"] == 2
    assert (run_dir / "output" / "t.safetensors").is_file()


def test_stop_at_an_epoch_end_sample_ends_before_the_next_epoch(tiny_model, dataset, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    stop_when(monkeypatch, "sample", run_dir)
    cfg = long_config(tiny_model, dataset, sampling__sample_every_n_epochs=1, **PREVIEW)
    assert train(cfg, run_dir) == 0
    events = events_of(run_dir)
    per_epoch = next(e["steps_per_epoch"] for e in events if e["type"] == "started")
    assert events[-1]["type"] == "stopped" and events[-1]["step"] == per_epoch  # the first epoch only


def test_stop_while_saving_ends_after_that_save(tiny_model, dataset, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    stop_when(monkeypatch, "saved", run_dir)
    assert train(long_config(tiny_model, dataset, save__save_every_n_steps=2), run_dir) == 0
    end = events_of(run_dir)[-1]
    assert end["type"] == "stopped" and end["step"] == 2


def test_a_stop_left_by_an_earlier_run_does_not_stop_a_new_one(tiny_model, dataset, tmp_path):
    run_dir = tmp_path / "run"
    cfg = tiny_config(tiny_model, dataset, training__max_train_steps=1)
    assert train(cfg, run_dir) == 0
    # A STOP older than that run's last event was meant for it (say the run was killed after the click).
    request_stop(run_dir)
    last = events_of(run_dir)[-1]["time"]
    os.utime(run_dir / STOP_FILE, (last - 5, last - 5))
    assert train(cfg, run_dir) == 0
    assert events_of(run_dir)[-1]["type"] == "finished"
