"""Two sd-scripts switches that configs carry: enable_wildcard (a caption file's lines and {a|b} choices picked at
random each step) and sample_at_first (previews of the untrained LoRA before the first step), and the old optimizer
flags use_8bit_adam / use_lion_optimizer that older configs still set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.config import ConfigError
from trainer.config.kohya import import_kohya
from trainer.engine import loop
from trainer.engine.run import train
from trainer.events import read_events


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")


@pytest.fixture(scope="module")
def wildcard_data(tmp_path_factory) -> Path:
    root = make_dataset(tmp_path_factory.mktemp("data"), n=2)
    for txt in (root / "5_zk").glob("*.txt"):
        txt.write_text("zk, {red|blue} circle\nzk, second line", encoding="utf-8")
    return root


def _captions_seen(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = loop.StepRunner._conditioning

    def spy(self, captions):
        seen.extend(captions)
        return real(self, captions)

    monkeypatch.setattr(loop.StepRunner, "_conditioning", spy)
    return seen


@pytest.mark.parametrize("cached", [False, True])
def test_wildcard_captions_vary_each_step(tiny_model, wildcard_data, tmp_path, monkeypatch, cached):
    seen = _captions_seen(monkeypatch)
    cfg = tiny_config(tiny_model, wildcard_data, caption__enable_wildcard=True, training__max_train_epochs=2,
                      training__network_train_unet_only=True, speed__cache_text_encoder_outputs=cached)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    assert set(seen) == {"zk, red circle", "zk, blue circle", "zk, second line"}, set(seen)


def test_without_wildcard_the_first_line_is_the_caption(tiny_model, wildcard_data, tmp_path, monkeypatch):
    seen = _captions_seen(monkeypatch)
    assert train(tiny_config(tiny_model, wildcard_data, training__max_train_steps=3), tmp_path / "run") == 0
    assert set(seen) == {"zk, {red|blue} circle"}


def test_sample_at_first_draws_previews_before_the_first_step(tiny_model, wildcard_data, tmp_path):
    cfg = tiny_config(tiny_model, wildcard_data, sampling__sample_at_first=True, sampling__sample_prompts="zk",
                      sampling__sample_every_n_epochs=1, sampling__sample_width=64, sampling__sample_height=64,
                      sampling__sample_steps=2, training__max_train_epochs=1)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    samples = [(e["step"], e["epoch"]) for e in read_events(tmp_path / "run")[0] if e["type"] == "sample"]
    assert samples == [(0, 0), (5, 1)]  # before training, then after the epoch
    without = tiny_config(tiny_model, wildcard_data, sampling__sample_prompts="zk", sampling__sample_every_n_epochs=1,
                          sampling__sample_width=64, sampling__sample_height=64, sampling__sample_steps=2,
                          training__max_train_epochs=1)
    assert train(without, tmp_path / "plain") == 0
    assert [e["step"] for e in read_events(tmp_path / "plain")[0] if e["type"] == "sample"] == [5]


def test_sd_scripts_switches_import():
    cfg = import_kohya({"train_data_dir": "img", "enable_wildcard": True, "sample_at_first": True})
    assert cfg.caption.enable_wildcard is True and cfg.sampling.sample_at_first is True


@pytest.mark.parametrize(("flag", "optimizer"), [("use_8bit_adam", "AdamW8bit"), ("use_lion_optimizer", "Lion")])
def test_old_optimizer_flags_name_the_optimizer(flag, optimizer):
    assert import_kohya({"train_data_dir": "img", flag: True}).optimizer.optimizer_type == optimizer
    assert import_kohya({"train_data_dir": "img", flag: False}).optimizer.optimizer_type == "AdamW"  # sd-scripts'
    with pytest.raises(ConfigError) as exc:  # two different optimizers named: which one was meant is unclear
        import_kohya({"train_data_dir": "img", flag: True, "optimizer_type": "Prodigy"})
    assert flag in str(exc.value) and "optimizer_type" in str(exc.value)
