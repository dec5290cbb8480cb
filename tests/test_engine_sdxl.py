"""End-to-end SDXL LoRA training on a tiny SDXL model: sd-scripts' SDXL key names with te1 and te2, true alpha,
metadata, diffusers' SDXL loader taking every key, previews, cached text outputs, long prompts and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft.tuners.lora import LoraLayer

from tests.engine_helpers import (
    lora_modules,
    losses,
    make_dataset,
    save_tiny_sd15,
    save_tiny_sdxl,
    tiny_config,
)
from trainer.config import check
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.save import read_lora

PREFIXES = {"lora_unet_": "unet", "lora_te1_": "text_encoder", "lora_te2_": "text_encoder_2"}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sdxl(tmp_path_factory.mktemp("model") / "tiny-sdxl")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)  # 2 images x 5 repeats / batch 2: 5 steps


def sdxl_config(model, data, **overrides):
    return tiny_config(model, data, model__family="sdxl", **overrides)


@pytest.fixture(scope="module")
def two_epoch_run(tiny_model, dataset, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    cfg = sdxl_config(tiny_model, dataset, sampling__sample_prompts="zk, circle --n square",
                      sampling__sample_every_n_epochs=1, sampling__sample_width=64, sampling__sample_height=64,
                      sampling__sample_steps=2)
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    return run_dir


def test_two_epochs_write_sd_scripts_sdxl_names_true_alpha_and_metadata(two_epoch_run):
    tensors, meta = read_lora(two_epoch_run / "output" / "t.safetensors")
    modules = lora_modules(tensors)
    assert {m for m in modules if not m.startswith(tuple(PREFIXES))} == set()
    for prefix in PREFIXES:
        assert any(m.startswith(prefix) for m in modules), prefix
    # U-Net names in the original SGM layout, as sd-scripts writes SDXL files
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q" in modules
    assert "lora_unet_middle_block_1_proj_in" in modules
    assert "lora_unet_output_blocks_0_1_transformer_blocks_1_ff_net_2" in modules
    assert not any("down_blocks" in m or "up_blocks" in m for m in modules)
    assert "lora_te2_text_model_encoder_layers_4_mlp_fc2" in modules
    for m in modules:
        assert tensors[f"{m}.alpha"].item() == 2.0 and tensors[f"{m}.alpha"].dtype == torch.float32
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "2.0"


def test_previews_are_drawn_with_the_sdxl_pipeline(two_epoch_run):
    samples = [e for e in read_events(two_epoch_run)[0] if e["type"] == "sample"]
    assert [e["step"] for e in samples] == [5, 10]
    from PIL import Image

    assert Image.open(samples[-1]["path"]).size == (64, 64)


def _render(pipe) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        return pipe("zk, circle", num_inference_steps=2, generator=generator, output_type="latent", height=64,
                    width=64, guidance_scale=1.0).images


def test_diffusers_sdxl_pipeline_takes_every_key_and_weight_zero_is_the_base(two_epoch_run, tiny_model):
    from diffusers import StableDiffusionXLPipeline

    path = two_epoch_run / "output" / "t.safetensors"
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_model)
    base = _render(pipe)
    pipe.load_lora_weights(str(path), adapter_name="t")
    # The load report: every module of the file became a LoRA layer of the matching component, none dropped.
    in_file: dict[str, int] = {}
    for m in lora_modules(read_lora(path)[0]):
        component = next(c for p, c in PREFIXES.items() if m.startswith(p))
        in_file[component] = in_file.get(component, 0) + 1
    loaded = {c: sum(isinstance(x, LoraLayer) for x in getattr(pipe, c).modules()) for c in in_file}
    assert loaded == in_file
    assert (_render(pipe) - base).abs().max() > 1e-4
    pipe.set_adapters(["t"], [0.0])
    torch.testing.assert_close(_render(pipe), base, atol=1e-5, rtol=1e-5)


def test_resume_from_state_equals_uninterrupted_run(tiny_model, dataset, tmp_path):
    common = dict(caption__shuffle_caption=True, augment__flip_aug=True)
    assert train(sdxl_config(tiny_model, dataset, **common), tmp_path / "full") == 0
    first = sdxl_config(tiny_model, dataset, save__save_state=True, training__max_train_steps=7, **common)
    assert train(first, tmp_path / "first") == 0  # stops mid-epoch 2 and saves its state
    second = sdxl_config(tiny_model, dataset, save__resume=str(tmp_path / "first" / "output" / "t-state"), **common)
    assert train(second, tmp_path / "second") == 0
    assert losses(tmp_path / "second") == losses(tmp_path / "full")[7:]
    a, b = (read_lora(tmp_path / r / "output" / "t.safetensors")[0] for r in ("full", "second"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_cached_text_encoder_outputs_equal_live_encoding(tiny_model, dataset, tmp_path):
    from safetensors import safe_open

    from trainer.families import get_family
    from trainer.models.loading import load_sdxl

    common = dict(training__network_train_unet_only=True, training__max_train_epochs=1)
    runs = tmp_path / "runs"  # so the text cache lands in tmp_path/models
    assert train(sdxl_config(tiny_model, dataset, **common), runs / "live") == 0
    cached = sdxl_config(tiny_model, dataset, speed__cache_text_encoder_outputs_to_disk=True, **common)
    assert train(cached, runs / "cached") == 0
    files = sorted((tmp_path / "models" / "text-encoder-cache").glob("*.safetensors"))
    assert len(files) == 2  # one per caption
    parts = load_sdxl(str(tiny_model), cache_dir=tmp_path)
    for file in files:
        with safe_open(str(file), "pt") as f:
            text, stored = f.metadata()["text"], {k: f.get_tensor(k) for k in f.keys()}
        with torch.no_grad():
            live = get_family("sdxl").encode([parts.text_encoder, parts.text_encoder_2],
                                             [parts.tokenizer, parts.tokenizer_2], [text], cached)
        assert stored.keys() == {"hidden", "pooled"}
        for key, value in live.items():
            torch.testing.assert_close(stored[key], value[0], atol=1e-6, rtol=1e-5)
    # and training from the cache follows the live run (up to float rounding of batched encoding)
    assert losses(runs / "cached") == pytest.approx(losses(runs / "live"), rel=1e-5)


def test_a_225_token_caption_reaches_both_encoders_as_three_chunks(tiny_model):
    from trainer.families import get_family
    from trainer.models.loading import load_sdxl

    parts = load_sdxl(str(tiny_model), cache_dir=tiny_model.parent)
    seen = []
    for te in (parts.text_encoder, parts.text_encoder_2):
        te.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(tuple(kwargs.get("input_ids", args[0]
                                                                                        if args else None).shape)),
                                     with_kwargs=True)
    cfg = sdxl_config(tiny_model, tiny_model, caption__max_token_length=225)
    cond = get_family("sdxl").encode([parts.text_encoder, parts.text_encoder_2], [parts.tokenizer, parts.tokenizer_2],
                                     ["x" * 400], cfg)
    assert seen == [(3, 77), (3, 77)]
    assert cond["hidden"].shape == (1, 227, 72) and cond["pooled"].shape == (1, 32)


def test_clip_skip_is_refused_for_sdxl_with_the_field_named(tiny_model, dataset):
    findings = check(sdxl_config(tiny_model, dataset, other__clip_skip=2), for_training=False)
    assert [(f.field, f.level) for f in findings] == [("other.clip_skip", "error")]
    assert "only to sd15" in findings[0].en


def test_sdxl_vae_stays_fp32_when_the_rest_is_half_precision(tiny_model, dataset, tmp_path):
    from trainer.engine.build import load_models
    from trainer.engine.precision import Precision

    half = Precision("cpu", "no", torch.bfloat16, torch.float32, torch.bfloat16)
    for family, vae_dtype in (("sdxl", torch.float32), ("sd15", torch.bfloat16)):
        model = tiny_model if family == "sdxl" else save_tiny_sd15(tmp_path / "sd15")
        cfg = tiny_config(model, dataset, model__family=family)
        models = load_models(cfg, half, tmp_path, lambda *a, **k: None, lambda *a, **k: None)
        assert next(models.vae.parameters()).dtype == vae_dtype, family
        assert next(models.unet.parameters()).dtype == torch.bfloat16


def test_a_225_token_sd15_caption_reaches_clip_as_three_chunks_with_clip_skip(tmp_path, dataset):
    from trainer.families import get_family
    from trainer.models.loading import load_sd15

    parts = load_sd15(str(save_tiny_sd15(tmp_path / "sd15")), cache_dir=tmp_path)
    seen = []
    parts.text_encoder.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(tuple(kwargs.get("input_ids", args[0] if args else None).shape)),
        with_kwargs=True)
    cfg = tiny_config(tmp_path, dataset, caption__max_token_length=225, other__clip_skip=2)
    cond = get_family("sd15").encode([parts.text_encoder], [parts.tokenizer], ["x" * 400], cfg)
    assert seen == [(3, 77)] and cond["hidden"].shape == (1, 227, 32)


def test_zero_terminal_snr_trains_v_prediction_on_a_pure_noise_last_step(tiny_model, dataset, tmp_path, monkeypatch):
    from trainer.engine import build

    seen = []
    real = build._prediction_scheduler
    monkeypatch.setattr(build, "_prediction_scheduler", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    results = {}
    for ztsnr in (False, True):
        cfg = sdxl_config(tiny_model, dataset, model__v_parameterization=True, noise__zero_terminal_snr=ztsnr,
                          training__max_train_epochs=1, optimizer__min_snr_gamma=5.0)
        assert train(cfg, tmp_path / str(ztsnr)) == 0
        results[ztsnr] = read_lora(tmp_path / str(ztsnr) / "output" / "t.safetensors")[0]
    plain, rescaled = (s.alphas_cumprod[-1].item() for s in seen)
    assert plain > 1e-3 and rescaled < 1e-6  # the last timestep is pure noise only with the option
    assert seen[-1].config.prediction_type == "v_prediction"
    assert any(not torch.equal(results[False][k], results[True][k]) for k in results[True])
    assert all(torch.isfinite(v).all() for v in results[True].values())  # min-SNR with SNR 0 stays finite


def test_zero_terminal_snr_without_v_prediction_is_refused(tiny_model, dataset):
    findings = check(sdxl_config(tiny_model, dataset, noise__zero_terminal_snr=True), for_training=False)
    assert [(f.field, f.level) for f in findings] == [("noise.zero_terminal_snr", "error")]
