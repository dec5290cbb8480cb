"""The memory badge's text, in both languages, with the over-the-card warning."""

from __future__ import annotations

from trainer.config import TrainConfig, apply_overlay
from trainer.memory import estimate_memory
from ui.components.memory_badge import memory_estimate_markdown


def test_badge_fits_and_over():
    cfg = TrainConfig()
    gb = estimate_memory(cfg).total_gb
    fits = memory_estimate_markdown(cfg, "en", gpu_gb=24.0)
    assert fits.startswith(f"**≈ {gb:.1f} GB GPU memory** (this GPU: 24 GB)")
    assert "⚠" not in fits and "base model" in fits
    over = memory_estimate_markdown(cfg, "zh", gpu_gb=2.0)
    assert f"约需 {gb:.1f} GB 显存" in over and "（本机显卡：2 GB）" in over and "⚠ 超出" in over
    assert "(no CUDA GPU" in memory_estimate_markdown(cfg, "en", gpu_gb=None)


def test_each_part_of_the_estimate_names_its_unit():
    cfg = TrainConfig()
    parts = {name: gb for name, gb in estimate_memory(cfg).parts.items() if gb >= 0.05}
    text = memory_estimate_markdown(cfg, "en", gpu_gb=24.0)
    assert f"base model {parts['base']:.1f} GB" in text and f"CUDA overhead {parts['overhead']:.1f} GB" in text


def test_badge_survives_a_half_typed_resolution():
    cfg = apply_overlay(TrainConfig(), {"dataset": {"resolution": "51x"}})
    assert "unavailable" in memory_estimate_markdown(cfg, "en", gpu_gb=8.0)
