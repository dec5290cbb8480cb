"""An engine run from the files users download (a BFL transformer file plus ae, clip_l and t5xxl), with the
network off: the LoRA is written in sd-scripts' Flux naming and the header says what the run trained on.

diffusers' BFL converter hard-codes FLUX.1's block width, so the transformer has one double and one single block
at the real width (~480M parameters); the other parts are the tiny ones. Their configs come from the test's own
config root in place of the full-size ones in assets/model_configs/flux; the T5 tokenizer is the shipped one."""

from __future__ import annotations

import pytest

from tests.engine_helpers import lora_modules, make_dataset, tiny_config
from tests.flux_files import write_flux_files
from trainer.engine.run import train
from trainer.events import read_events
from trainer.models import flux_single_file
from trainer.networks.save import read_lora


@pytest.mark.slow
def test_a_run_from_separate_flux_files_trains_offline_and_writes_flux_names(tmp_path, monkeypatch, offline):
    files = write_flux_files(tmp_path / "files", dev=True)
    real_load = flux_single_file.load_flux_files
    monkeypatch.setattr(flux_single_file, "load_flux_files",
                        lambda model_cfg, **kw: real_load(model_cfg, config_root=files["configs"], **kw))
    data = make_dataset(tmp_path / "data", n=2)
    cfg = tiny_config(files["flux1"], data, model__family="flux", model__ae=str(files["ae"]),
                      model__clip_l=str(files["clip_l"]), model__t5xxl=str(files["t5xxl"]),
                      flux__t5xxl_max_token_length=64, training__max_train_steps=2)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]

    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    modules = lora_modules(tensors)
    assert {"lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_double_blocks_0_txt_mlp_2",
            "lora_unet_single_blocks_0_linear1", "lora_unet_single_blocks_0_modulation_lin"} <= modules
    assert {m for m in modules if not m.startswith("lora_te1_")} == {m for m in modules if m.startswith("lora_unet_")}
    assert any(m.startswith("lora_te1_text_model_encoder_layers_0_") for m in modules)
    # width 3072: the fused qkv is three 3072-wide outputs, each with its own rank-4 block
    assert tensors["lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight"].shape == (3 * 3072, 12)
    assert any(tensors[f"{m}.lora_up.weight"].abs().sum() > 0 for m in modules)  # trained, not the zero init
    assert meta["ss_base_model_version"] == "flux1" and meta["modelspec.architecture"] == "flux-1-dev/lora"
    assert meta["ss_sd_model_name"] == "flux1.safetensors"
