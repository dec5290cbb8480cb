"""bench/models.py builds the full-size architectures from the configs Danlu ships (nothing downloaded) and saves
the tiny model of each family that bench/gpu_speed.py --tiny-cpu trains."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import models  # noqa: E402


@pytest.mark.parametrize(("build", "denoiser", "width"), [
    (models.full_sd15_pipeline, "unet", 768),
    (models.full_sdxl_pipeline, "unet", 2048),
    (models.full_flux_pipeline, "transformer", 4096),
])
def test_full_size_models_build_offline_from_the_shipped_configs(offline, build, denoiser, width):
    """On the meta device: the real shapes, no memory for the weights."""
    pipe = build(device="meta")
    config = getattr(pipe, denoiser).config
    assert (config.get("cross_attention_dim") or config.get("joint_attention_dim")) == width
    if denoiser == "transformer":  # FLUX.1-dev: 19 double and 38 single blocks, with a guidance input
        assert (config.num_layers, config.num_single_layers, config.guidance_embeds) == (19, 38, True)


@pytest.mark.parametrize("family", ["sd15", "sdxl", "flux"])
def test_tiny_model_of_each_family_saves_as_that_family(tmp_path, family):
    import json

    from trainer.models.detect import detect_family

    out = models.save_model(tmp_path / "m", family, "tiny")
    index = json.loads((out / "model_index.json").read_text())
    assert ("transformer" in index) == (family == "flux")
    assert detect_family(out) == family
