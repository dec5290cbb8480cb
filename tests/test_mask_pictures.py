"""dataset.conditioning_data_dir: masks as pictures of their own (sd-scripts' masked_loss with a conditioning_data_dir),
one a training image with the same file name, its red channel weighing the loss (white trains, black does not). A
mask picture trains exactly as the same mask in the picture's alpha channel (dataset.alpha_mask) does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.engine_helpers import losses, save_tiny_sd15, tiny_config
from tests.test_alpha_mask import _lora, _rgba
from trainer.config.kohya import export_kohya, import_kohya
from trainer.engine.run import train
from trainer.events import read_events

SIZES = [(64, 64), (96, 64), (64, 64)]
OPAQUE = [32, 40, 8]  # columns of each picture that train


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")


@pytest.fixture(scope="module")
def two_forms(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(pictures with the mask in alpha, the same pictures without alpha, a folder of their masks as pictures)."""
    root = tmp_path_factory.mktemp("masks")
    in_alpha, plain, masks = root / "alpha" / "1_zk", root / "plain" / "1_zk", root / "masks"
    for folder in (in_alpha, plain, masks):
        folder.mkdir(parents=True)
    for i, (size, opaque) in enumerate(zip(SIZES, OPAQUE, strict=True)):
        _rgba(in_alpha / f"{i}.png", size, opaque)
        seen = np.full((size[1], size[0], 3), 255, np.uint8)  # what the alpha form is trained as: red on white
        seen[:, :opaque] = (200, 30, 30)
        Image.fromarray(seen).save(plain / f"{i}.png")
        (plain / f"{i}.txt").write_text("zk, red", encoding="utf-8")
        mask = np.zeros((size[1], size[0], 3), np.uint8)
        mask[:, :opaque, 0] = 255  # the red channel is the mask; the others are not read
        Image.fromarray(mask).save(masks / (f"{i}.bmp" if i == 1 else f"{i}.png"))  # any image type, lossless
    # the same pixels either way (the alpha form is composited on white), and the same masks: the same training
    return root / "alpha", root / "plain", masks


@pytest.mark.parametrize("cache_latents", [False, True])
def test_a_mask_picture_trains_as_the_same_mask_in_alpha(tiny_model, two_forms, tmp_path, cache_latents):
    in_alpha, plain, masks = two_forms
    common = dict(speed__cache_latents=cache_latents, training__max_train_steps=3, training__train_batch_size=1)
    assert train(tiny_config(tiny_model, in_alpha, dataset__alpha_mask=True, **common), tmp_path / "alpha") == 0
    assert train(tiny_config(tiny_model, plain, dataset__conditioning_data_dir=str(masks), **common),
                 tmp_path / "pictures") == 0, read_events(tmp_path / "pictures")[0][-1]
    assert losses(tmp_path / "pictures") == pytest.approx(losses(tmp_path / "alpha"), rel=1e-5)
    a, b = _lora(tmp_path / "alpha"), _lora(tmp_path / "pictures")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert train(tiny_config(tiny_model, plain, **common), tmp_path / "unmasked") == 0
    assert losses(tmp_path / "unmasked") != pytest.approx(losses(tmp_path / "pictures"), rel=1e-3)


def test_a_training_image_without_a_mask_picture_is_named(tiny_model, two_forms, tmp_path):
    _, plain, _ = two_forms
    black = tmp_path / "black"
    black.mkdir()
    for i, size in enumerate(SIZES[:2]):  # none for 2.png
        Image.new("RGB", size, (0, 255, 255)).save(black / f"{i}.png")  # green and blue are not the mask
    cfg = tiny_config(tiny_model, plain, dataset__conditioning_data_dir=str(black), training__max_train_steps=2,
                      training__train_batch_size=1)
    assert train(cfg, tmp_path / "run") == 0
    warned = [e["message"] for e in read_events(tmp_path / "run")[0] if e["type"] == "warning"]
    assert [m for m in warned if "conditioning_data_dir" in m and "1 of 3" in m and "2.png" in m], warned


def test_sd_scripts_masked_loss_with_a_mask_folder_imports():
    cfg = import_kohya({"train_data_dir": "img", "masked_loss": True, "conditioning_data_dir": "/data/masks"})
    assert cfg.dataset.conditioning_data_dir == "/data/masks" and cfg.dataset.alpha_mask is False
    out = export_kohya(cfg)
    assert out["conditioning_data_dir"] == "/data/masks" and out["masked_loss"] is True  # sd-scripts needs both
    notes: list = []
    cfg = import_kohya({"train_data_dir": "img", "conditioning_data_dir": "/data/masks"}, warnings=notes)
    assert cfg.dataset.conditioning_data_dir == ""  # sd-scripts reads it only with masked_loss
    assert [n.field for n in notes] == ["conditioning_data_dir"]


def test_a_dataset_files_mask_folder_imports_with_masked_loss(tmp_path):
    """sd-scripts' dataset TOML gives the mask folder per subset (read from the dataset file's folder here, as its
    image_dir is); subsets that share one import it."""
    from tests.test_config_kohya_dataset import write
    from trainer.config import ConfigError, load_config

    (tmp_path / "img" / "10_mychar").mkdir(parents=True)
    dataset = ("[[datasets]]\n[[datasets.subsets]]\nimage_dir = 'img/10_mychar'\nnum_repeats = 10\n"
               "conditioning_data_dir = 'masks'\n")
    cfg = load_config(write(tmp_path, dataset, "masked_loss = true\n"))
    assert cfg.dataset.conditioning_data_dir == str(tmp_path / "masks")
    (tmp_path / "img" / "3_outfit").mkdir()
    two = dataset + ("[[datasets.subsets]]\nimage_dir = 'img/3_outfit'\nnum_repeats = 3\n"
                     "conditioning_data_dir = 'other'\n")
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, two, "masked_loss = true\n"))
    assert "conditioning_data_dir" in str(exc.value)


def test_alpha_mask_beside_a_mask_folder_is_warned_unused():
    from trainer.config import check, config_from_dict

    both = config_from_dict({"dataset": {"alpha_mask": True, "conditioning_data_dir": "/masks"}})
    assert [f.level for f in check(both, for_training=False) if f.field == "dataset.alpha_mask"] == ["warning"]
    alone = config_from_dict({"dataset": {"alpha_mask": True}})
    assert not [f for f in check(alone, for_training=False) if f.field == "dataset.alpha_mask"]
