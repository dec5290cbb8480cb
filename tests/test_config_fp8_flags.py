"""sd-scripts' two fp8 switches and Danlu's one. sd-scripts' fp8_base stores the frozen U-Net (or Flux transformer)
and the text encoders in fp8; its fp8_base_unet stores only the denoiser, which is what Danlu's speed.fp8_base
does (trainer/engine/fp8.py). An imported file gets the same training, or a warning saying where it differs."""

from __future__ import annotations

import pytest

from trainer.config import config_from_dict
from trainer.config.kohya import export_kohya, import_kohya
from trainer.networks.metadata import sd_scripts_args


@pytest.mark.parametrize("family", ["sd15", "sdxl", "flux"])
def test_fp8_base_unet_is_danlus_fp8_base(family):
    notes = []
    cfg = import_kohya({"fp8_base_unet": True, "mixed_precision": "bf16"}, family=family, warnings=notes)
    assert cfg.speed.fp8_base is True
    assert not [n for n in notes if "fp8" in n.field]


def test_fp8_base_alone_warns_that_the_text_encoders_stay_unrounded():
    notes = []
    cfg = import_kohya({"fp8_base": True, "mixed_precision": "bf16"}, family="flux", warnings=notes)
    assert cfg.speed.fp8_base is True
    (note,) = [n for n in notes if n.field == "fp8_base"]
    assert "text encoder" in note.en and "fp8_base_unet" in note.en and "文本编码器" in note.zh
    notes = []
    import_kohya({"fp8_base": True, "fp8_base_unet": True, "mixed_precision": "bf16"}, warnings=notes)
    assert not [n for n in notes if "fp8" in n.field]  # both set: sd-scripts keeps the text encoders too


def test_export_asks_sd_scripts_for_the_denoiser_only():
    cfg = config_from_dict({"speed": {"fp8_base": True, "mixed_precision": "bf16"}})
    out = export_kohya(cfg)
    assert out["fp8_base"] is True and out["fp8_base_unet"] is True
    assert sd_scripts_args(cfg)["fp8_base_unet"] is True  # the LoRA header's ss_fp8_base_unet
    assert import_kohya(out).speed.fp8_base is True
    assert "fp8_base_unet" not in export_kohya(config_from_dict({}))
