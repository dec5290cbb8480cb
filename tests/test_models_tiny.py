"""Tiny offline models: they run, reload identically, and the demo model is built once."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline

from trainer.models.demo import DONE_MARKER, ensure_demo_model
from trainer.models.tiny import build_tiny_flux, build_tiny_sd15, build_tiny_sdxl, save_tiny
from trainer.models.tokenizer import tiny_clip_tokenizer, tiny_t5_tokenizer

BUILDERS = {"sd15": build_tiny_sd15, "sdxl": build_tiny_sdxl, "flux": build_tiny_flux}


def _generate(pipe) -> np.ndarray:
    extra = {"max_sequence_length": 16} if "Flux" in type(pipe).__name__ else {}
    pipe.set_progress_bar_config(disable=True)
    return pipe("a red circle", num_inference_steps=2, height=32, width=32, output_type="np",
                generator=torch.Generator().manual_seed(0), **extra).images


def test_clip_tokenizer_round_trips_any_text_without_unknown_tokens():
    tok = tiny_clip_tokenizer()
    ids = tok("a red circle, 丹炉", padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77 and ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True).replace(" ", "") == "aredcircle,丹炉"
    assert tok.model_max_length == 77 and len(tok) == 514
    assert tiny_clip_tokenizer(model_max_length=20).model_max_length == 20


def test_t5_tokenizer_is_byte_level():
    tok = tiny_t5_tokenizer()
    assert tok.decode(tok("丹炉 ok").input_ids, skip_special_tokens=True) == "丹炉 ok"


@pytest.mark.parametrize("family", ["sd15", "sdxl", "flux"])
def test_tiny_pipeline_generates_and_reloads_identically(family, tmp_path):
    pipe = BUILDERS[family](seed=0)
    image = _generate(pipe)
    assert image.shape == (1, 32, 32, 3) and np.isfinite(image).all()

    folder = save_tiny(family, tmp_path / family, seed=0)
    reloaded = DiffusionPipeline.from_pretrained(folder, local_files_only=True)
    assert type(reloaded) is type(pipe)
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            saved, loaded = component.state_dict(), getattr(reloaded, name).state_dict()
            assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved), name
    # CPU kernels are not bit-reproducible from run to run (the same Flux pipeline differs by ~2e-4).
    np.testing.assert_allclose(_generate(reloaded), image, rtol=0, atol=2e-3)


def test_seed_decides_the_weights():
    a, b, c = build_tiny_sd15(seed=1), build_tiny_sd15(seed=1), build_tiny_sd15(seed=2)
    assert torch.equal(a.unet.conv_in.weight, b.unet.conv_in.weight)
    assert not torch.equal(a.unet.conv_in.weight, c.unet.conv_in.weight)


def test_sd15_uses_the_sd15_noise_schedule():
    config = build_tiny_sd15().scheduler.config
    assert (config.beta_start, config.beta_end, config.beta_schedule, config.num_train_timesteps) == (
        0.00085, 0.012, "scaled_linear", 1000)


def test_save_tiny_rejects_unknown_family_and_single_file_flux(tmp_path):
    with pytest.raises(ValueError, match="sd3"):
        save_tiny("sd3", tmp_path / "x")
    with pytest.raises(ValueError, match="sd15 and sdxl only"):
        save_tiny("flux", tmp_path / "x", single_file=True)


def test_demo_model_is_built_once_and_rebuilt_when_half_written(tmp_path):
    folder = ensure_demo_model(tmp_path)
    assert folder == tmp_path / "danlu-demo-sd15" and (folder / DONE_MARKER).is_file()
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert ensure_demo_model(tmp_path) == folder
    assert weights.stat().st_mtime_ns == stamp  # not rebuilt

    (folder / DONE_MARKER).unlink()  # as if the first build had been killed half-way
    weights.write_bytes(b"torn")
    ensure_demo_model(tmp_path)
    pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True)
    assert tuple(pipe.unet.config.block_out_channels) == (8, 8, 16, 16)  # 8x VAE: 8x8 latents at 64 px
    assert [p.name for p in tmp_path.iterdir()] == ["danlu-demo-sd15"]  # no staging folder left behind


def test_clip_bpe_builder_rejects_a_file_that_is_not_clips(tmp_path):
    import gzip

    from trainer.models.tokenizer import write_clip_tokenizer_from_bpe

    bpe = tmp_path / "short.txt.gz"
    with gzip.open(bpe, "wt", encoding="utf-8") as fh:
        fh.write("#version: 0.2\nt h\nth e</w>\n")
    with pytest.raises(ValueError, match="short.txt.gz: not CLIP's BPE merges file"):
        write_clip_tokenizer_from_bpe(bpe, tmp_path / "tok")


def test_finding_a_built_demo_model_imports_no_diffusers(tmp_path):
    """`check`/`export` with the demo preset answer in about two seconds, not eight: the builder (and diffusers)
    is imported only when the model must be built."""
    folder = ensure_demo_model(tmp_path)
    probe = ("import sys; from pathlib import Path; from trainer.models.demo import ensure_demo_model; "
             f"print(ensure_demo_model(Path({str(tmp_path)!r}))); print('diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(folder), "False"]
