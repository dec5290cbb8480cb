"""LoRA comparison grids on the tiny SD1.5 model: labelled, weight 0 is the base model, weights differ."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.grid import GridRequest, generate_grid, load_pipeline, parse_weights, render_one
from trainer.grid.generate import parse_grid_prompts

ROOT = Path(__file__).resolve().parent.parent


def make_tiny_base(path: Path) -> Path:
    """The four-level tiny SD1.5 (64 px images from 8x8 latents) as a diffusers folder."""
    from trainer.models.tiny import build_tiny_sd15

    build_tiny_sd15(seed=0, four_level=True).save_pretrained(path, safe_serialization=True)
    return path


def make_lora(path: Path, seed: int = 1, family: str = "sd15") -> Path:
    """A kohya LoRA for the tiny base, U-Net and text encoder(s), with random (non-zero) up weights."""
    from trainer.models.tiny import build_tiny_sd15, build_tiny_sdxl
    from trainer.networks.inject import add_lora
    from trainer.networks.kohya_format import to_kohya_state_dict
    from trainer.networks.save import save_lora

    pipe = build_tiny_sdxl(seed=0, real_layout=True) if family == "sdxl" else build_tiny_sd15(seed=0, four_level=True)
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    lora = add_lora(pipe.unet, encoders, dim=4, alpha=4.0)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for component in lora.models:
            for layer in lora.layers(component).values():
                weight = layer.lora_B[lora.adapter_name].weight
                weight.copy_(torch.randn(weight.shape, generator=gen))
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_lora(path, to_kohya_state_dict(lora, family), {"ss_network_dim": "4"}, precision="float")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread; several busy threads on a shared CI box take 50x longer."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    return make_tiny_base(root / "base"), make_lora(root / "epoch-1.safetensors", 1), make_lora(
        root / "epoch-2.safetensors", 2)


@pytest.fixture(scope="module")
def pipe(models):
    return load_pipeline(str(models[0]), cache_dir=models[0].parent / "cache")


def _px(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def test_grid_cells_weight_zero_is_base_and_weights_differ(models, pipe, tmp_path):
    base, lora_a, lora_b = models
    req = GridRequest(base=str(base), loras=[str(lora_a), str(lora_b)], prompts="a red circle\na blue square --d 7",
                      weights=[0.0, 0.5, 1.0], steps=2, width=64, height=64, seed=3)
    prompts = parse_grid_prompts(req)
    before = [render_one(pipe, p) for p in prompts]  # the base model, before any LoRA was loaded
    seen = []
    result = generate_grid(req, cache_dir=tmp_path, pipe=pipe, progress=lambda d, t, w: seen.append((d, t)))
    assert seen[-1] == (12, 12) and len(result.cells) == 12
    for pi, base_img in enumerate(before):
        for li in range(2):
            # Weight 0 gives the base model's picture for the same prompt and seed.
            assert np.abs(_px(result.cells[(pi, li, 0)]) - _px(base_img)).max() <= 1
            cells = [_px(result.cells[(pi, li, wi)]) for wi in range(3)]
            assert np.abs(cells[0] - cells[1]).mean() > 2 and np.abs(cells[1] - cells[2]).mean() > 2
        assert np.abs(_px(result.cells[(pi, 0, 2)]) - _px(result.cells[(pi, 1, 2)])).mean() > 2
    # Unloaded after the grid: the pipeline is the plain base model again.
    assert np.abs(_px(render_one(pipe, prompts[0])) - _px(before[0])).max() <= 1


def test_grid_renders_sdxl_loras_on_an_sdxl_base(tmp_path):
    from tests.engine_helpers import save_tiny_sdxl

    base = save_tiny_sdxl(tmp_path / "xl-base")
    lora = make_lora(tmp_path / "xl.safetensors", 1, family="sdxl")
    req = GridRequest(base=str(base), loras=[str(lora)], prompts="a red circle", weights=[0.0, 1.0], steps=2,
                      width=64, height=64, seed=3)
    pipe = load_pipeline(str(base), cache_dir=tmp_path / "cache")
    assert type(pipe).__name__ == "StableDiffusionXLPipeline"
    before = render_one(pipe, parse_grid_prompts(req)[0])
    result = generate_grid(req, cache_dir=tmp_path, pipe=pipe)
    assert np.abs(_px(result.cells[(0, 0, 0)]) - _px(before)).max() <= 1
    assert np.abs(_px(result.cells[(0, 0, 1)]) - _px(before)).mean() > 2


def test_grid_image_is_labelled_and_laid_out(models, pipe, tmp_path):
    base, lora_a, _ = models
    req = GridRequest(base=str(base), loras=[str(lora_a)], prompts="a red circle", weights=[0.0, 1.0], steps=2,
                      width=64, height=64)
    result = generate_grid(req, cache_dir=tmp_path, pipe=pipe)
    img = _px(result.image)
    h, w = img.shape[:2]
    label_w, top = w - 2 * 64, h - 64
    assert label_w > 10 and top > 10  # room for the file name on the left, title and weights above
    # The bottom-right cells are the pictures themselves.
    assert (img[top:, label_w:label_w + 64] == _px(result.cells[(0, 0, 0)])).all()
    assert (img[top:, label_w + 64:] == _px(result.cells[(0, 0, 1)])).all()
    # The labels are drawn: dark text in the left column and in each column's header.
    assert (img[top:, :label_w] < 100).any()
    for col in range(2):
        assert (img[top - 20:top, label_w + 64 * col:label_w + 64 * (col + 1)] < 100).any()


def test_parse_weights_and_errors(models, pipe, tmp_path):
    assert parse_weights("0, 0.5 1") == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="numbers"):
        parse_weights("0, half")
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        generate_grid(GridRequest(str(models[0]), [str(tmp_path / "nope.safetensors")], "x"), cache_dir=tmp_path,
                      pipe=pipe)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.safetensors"):
        generate_grid(GridRequest(str(models[0]), [str(empty)], "x"), cache_dir=tmp_path, pipe=pipe)
    with pytest.raises(ValueError, match="no prompt"):
        generate_grid(GridRequest(str(models[0]), [str(models[1])], "# only a comment"), cache_dir=tmp_path,
                      pipe=pipe)


def test_cli_grid_subprocess(models, tmp_path):
    base, lora_a, lora_b = models
    out = tmp_path / "g.png"
    out.write_bytes(b"last week's grid")
    cmd = [sys.executable, "-m", "trainer", "grid", "--base", str(base), "--lora", str(lora_a), "--lora", str(lora_b),
           "--weights", "0,1", "--prompt", "a red circle", "--steps", "2", "--width", "64", "--height", "64",
           "--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[4/4]" in proc.stderr
    kept = list(tmp_path.glob("g.png.*.bak"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"last week's grid" and kept[0].name in proc.stderr
    img = Image.open(out)
    assert img.width > 2 * 64 and img.height > 2 * 64
