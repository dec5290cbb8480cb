"""End-to-end Flux LoRA training on a tiny Flux.1-dev-shaped model: sd-scripts' Flux (BFL) key names with
fused q/k/v, true alpha, ss_base_model_version flux1, diffusers' Flux loader taking the keys, previews,
cached text outputs, resume, and the options that change what the transformer sees."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft.tuners.lora import LoraLayer

from tests.engine_helpers import flux_config, lora_modules, losses, make_dataset, save_tiny_flux
from trainer.config import check
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.save import read_lora


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_flux(tmp_path_factory.mktemp("model") / "tiny-flux")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)  # 2 images x 5 repeats / batch 2: 5 steps


@pytest.fixture(scope="module")
def two_epoch_run(tiny_model, dataset, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    cfg = flux_config(tiny_model, dataset, sampling__sample_prompts="zk, circle --g 2.5",
                      sampling__sample_every_n_epochs=1, sampling__sample_width=64, sampling__sample_height=64,
                      sampling__sample_steps=2)
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    return run_dir


DOUBLE = {"img_attn_qkv", "img_attn_proj", "img_mlp_0", "img_mlp_2", "img_mod_lin",
          "txt_attn_qkv", "txt_attn_proj", "txt_mlp_0", "txt_mlp_2", "txt_mod_lin"}
SINGLE = {"linear1", "linear2", "modulation_lin"}


def test_two_epochs_write_sd_scripts_flux_names_fused_qkv_true_alpha_and_metadata(two_epoch_run):
    tensors, meta = read_lora(two_epoch_run / "output" / "t.safetensors")
    modules = lora_modules(tensors)
    unet = {m for m in modules if m.startswith("lora_unet_")}
    assert unet == {f"lora_unet_double_blocks_0_{n}" for n in DOUBLE} | {f"lora_unet_single_blocks_0_{n}" for n in SINGLE}
    te = {m for m in modules if m.startswith("lora_te1_")}
    assert len(te) == 30 and "lora_te1_text_model_encoder_layers_0_self_attn_q_proj" in te
    assert modules == unet | te
    # fused BFL Linears: rank = splits x 4, up covers the fused output width, alpha scaled with the rank
    assert tensors["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"].shape == (12, 32)
    assert tensors["lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight"].shape == (96, 12)
    assert tensors["lora_unet_single_blocks_0_linear1.lora_up.weight"].shape == (32 * 3 + 128, 16)
    assert tensors["lora_unet_double_blocks_0_img_attn_qkv.alpha"].item() == 6.0
    assert tensors["lora_unet_single_blocks_0_linear1.alpha"].item() == 8.0
    for m in modules - {"lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_double_blocks_0_txt_attn_qkv",
                        "lora_unet_single_blocks_0_linear1"}:
        assert tensors[f"{m}.alpha"].item() == 2.0 and tensors[f"{m}.alpha"].dtype == torch.float32
    assert meta["ss_base_model_version"] == "flux1" and meta["ss_network_module"] == "networks.lora_flux"
    assert meta["modelspec.architecture"] == "flux-1-dev/lora"
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "2.0"
    # the Flux settings flux_train_network.py's update_metadata writes
    assert (meta["ss_model_type"], meta["ss_timestep_sampling"], meta["ss_model_prediction_type"]) == (
        "flux", "sigmoid", "raw")
    assert (meta["ss_weighting_scheme"], meta["ss_guidance_scale"], meta["ss_apply_t5_attn_mask"]) == (
        "none", "1.0", "False")


def test_previews_are_drawn_with_the_flux_pipeline(two_epoch_run):
    samples = [e for e in read_events(two_epoch_run)[0] if e["type"] == "sample"]
    assert [e["step"] for e in samples] == [5, 10]
    from PIL import Image

    assert Image.open(samples[-1]["path"]).size == (64, 64)


def _render(pipe) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        return pipe("zk, circle", num_inference_steps=2, generator=generator, output_type="latent", height=64,
                    width=64, guidance_scale=3.5, max_sequence_length=64).images


def test_diffusers_flux_pipeline_takes_every_key_and_weight_zero_is_the_base(two_epoch_run, tiny_model, tmp_path):
    """diffusers' kohya Flux converter hard-codes FLUX.1's single-block widths (3072 x 3 + 12288) for linear1,
    which a tiny model cannot have: linear1 is left out of the file diffusers reads here, and its fused layout
    is checked against the trained layers in test_fused_layers_carry_exactly_the_trained_deltas."""
    from diffusers import FluxPipeline
    from safetensors.torch import save_file

    tensors, _ = read_lora(two_epoch_run / "output" / "t.safetensors")
    kept = {k: v for k, v in tensors.items() if "_linear1." not in k}
    path = tmp_path / "no-linear1.safetensors"
    save_file(kept, str(path))
    pipe = FluxPipeline.from_pretrained(tiny_model)
    base = _render(pipe)
    pipe.load_lora_weights(str(path), adapter_name="t")
    # every module became LoRA layers: fused qkv -> 3 diffusers Linears each, the rest one each
    unet = [m for m in lora_modules(kept) if m.startswith("lora_unet_")]
    expected = sum(3 if m.endswith("_qkv") else 1 for m in unet)
    assert sum(isinstance(x, LoraLayer) for x in pipe.transformer.modules()) == expected
    assert sum(isinstance(x, LoraLayer) for x in pipe.text_encoder.modules()) == 30
    assert (_render(pipe) - base).abs().max() > 1e-4
    pipe.set_adapters(["t"], [0.0])
    torch.testing.assert_close(_render(pipe), base, atol=1e-5, rtol=1e-5)


def test_fused_layers_carry_exactly_the_trained_deltas():
    """The fused BFL layer's delta (alpha / rank) * up @ down, cut into its output rows, is each split's own
    delta: what ComfyUI/Forge apply to the fused Linear is what was trained on the diffusers Linears."""
    from trainer.networks.flux_names import fuse

    torch.manual_seed(0)
    splits = [(torch.randn(4, 32), torch.randn(out, 4)) for out in (32, 32, 32, 128)]
    down, up, alpha = fuse(splits, 2.0)
    fused_delta = (alpha / down.shape[0]) * up @ down
    row = 0
    for d, u in splits:
        torch.testing.assert_close(fused_delta[row:row + u.shape[0]], (2.0 / 4) * u @ d)
        row += u.shape[0]


def test_resume_from_state_equals_uninterrupted_run(tiny_model, dataset, tmp_path):
    common = dict(caption__shuffle_caption=True, flux__timestep_sampling="shift")
    assert train(flux_config(tiny_model, dataset, **common), tmp_path / "full") == 0
    first = flux_config(tiny_model, dataset, save__save_state=True, training__max_train_steps=7, **common)
    assert train(first, tmp_path / "first") == 0
    second = flux_config(tiny_model, dataset, save__resume=str(tmp_path / "first" / "output" / "t-state"), **common)
    assert train(second, tmp_path / "second") == 0
    assert losses(tmp_path / "second") == losses(tmp_path / "full")[7:]
    a, b = (read_lora(tmp_path / r / "output" / "t.safetensors")[0] for r in ("full", "second"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_cached_text_encoder_outputs_equal_live_encoding(tiny_model, dataset, tmp_path):
    from safetensors import safe_open

    from trainer.families import get_family
    from trainer.models.loading import load_flux

    common = dict(training__network_train_unet_only=True, training__max_train_epochs=1,
                  flux__apply_t5_attn_mask=True)
    runs = tmp_path / "runs"
    assert train(flux_config(tiny_model, dataset, **common), runs / "live") == 0
    cached = flux_config(tiny_model, dataset, speed__cache_text_encoder_outputs_to_disk=True, **common)
    assert train(cached, runs / "cached") == 0
    files = sorted((tmp_path / "models" / "text-encoder-cache").glob("*.safetensors"))
    assert len(files) == 2
    p = load_flux(str(tiny_model), cache_dir=tmp_path)
    for file in files:
        with safe_open(str(file), "pt") as f:
            text, stored = f.metadata()["text"], {k: f.get_tensor(k) for k in f.keys()}
        with torch.no_grad():
            live = get_family("flux").encode([p.text_encoder, p.text_encoder_2], [p.tokenizer, p.tokenizer_2],
                                             [text], cached)
        assert stored.keys() == {"hidden", "pooled", "t5_mask"}
        assert stored["hidden"].shape == (64, 32)
        for key, value in live.items():
            torch.testing.assert_close(stored[key], value[0], atol=1e-6, rtol=1e-5)
    assert losses(runs / "cached") == pytest.approx(losses(runs / "live"), rel=1e-5)


@pytest.mark.parametrize(("field", "value"), [("guidance_scale", 4.0), ("model_prediction_type", "sigma_scaled"),
                                              ("timestep_sampling", "uniform"), ("apply_t5_attn_mask", True),
                                              ("t5xxl_max_token_length", 128)])
def test_each_flux_option_changes_training(tiny_model, dataset, tmp_path, field, value):
    common = dict(training__max_train_steps=2)
    assert train(flux_config(tiny_model, dataset, **common), tmp_path / "base") == 0
    assert train(flux_config(tiny_model, dataset, **common, **{f"flux__{field}": value}), tmp_path / "opt") == 0
    assert losses(tmp_path / "opt") != losses(tmp_path / "base")


@pytest.mark.parametrize("scheme", ["sigma_sqrt", "cosmap", "logit_normal", "mode"])
def test_each_weighting_scheme_changes_training(tiny_model, dataset, tmp_path, scheme):
    """sd-scripts' combination where every scheme applies: the sigma sampling mode (density schemes) and the
    sigma_scaled prediction type (loss-weight schemes)."""
    common = dict(training__max_train_steps=2, flux__timestep_sampling="sigma",
                  flux__model_prediction_type="sigma_scaled")
    base = tmp_path / "base"
    assert train(flux_config(tiny_model, dataset, **common), base) == 0
    assert train(flux_config(tiny_model, dataset, **common, flux__weighting_scheme=scheme), tmp_path / "opt") == 0
    assert losses(tmp_path / "opt") != pytest.approx(losses(base), rel=1e-3)
    assert read_lora(tmp_path / "opt" / "output" / "t.safetensors")[1]["ss_weighting_scheme"] == scheme


@pytest.mark.parametrize(("overrides", "fields"), [
    ({"weighting_scheme": "sigma_sqrt"}, ["flux.weighting_scheme"]),  # raw prediction: no loss weight
    ({"weighting_scheme": "logit_normal"}, ["flux.weighting_scheme"]),  # sigmoid sampling: no density
    ({"weighting_scheme": "logit_normal", "timestep_sampling": "sigma", "mode_scale": 1.0}, ["flux.mode_scale"]),
    ({"weighting_scheme": "cosmap", "model_prediction_type": "sigma_scaled", "logit_std": 2.0},
     ["flux.logit_std"]),
    ({"weighting_scheme": "mode", "timestep_sampling": "sigma", "mode_scale": 1.0}, []),
])
def test_a_weighting_setting_that_would_do_nothing_is_a_warning_naming_it(tiny_model, dataset, overrides, fields):
    cfg = flux_config(tiny_model, dataset, **{f"flux__{k}": v for k, v in overrides.items()})
    findings = check(cfg, for_training=False)
    assert [f.field for f in findings if f.field.startswith("flux.")] == fields
    assert all(f.level == "warning" for f in findings)


def test_ddpm_only_options_are_refused_for_flux_with_the_field_named(tiny_model, dataset):
    findings = check(flux_config(tiny_model, dataset, optimizer__min_snr_gamma=5.0), for_training=False)
    assert [(f.field, f.level) for f in findings] == [("optimizer.min_snr_gamma", "error")]


def test_fp8_base_stores_the_frozen_transformer_in_fp8_and_trains_on_cpu(tiny_model, dataset, tmp_path):
    """Code path on the CPU (compute in float32 here; on a GPU with bf16 the compute dtype is bf16 — GPU-only)."""
    from trainer.engine.build import load_models
    from trainer.engine.fp8 import STORAGE, stored_fp8_share
    from trainer.engine.precision import resolve_precision

    cfg = flux_config(tiny_model, dataset, speed__fp8_base=True, training__max_train_steps=2)
    prec = resolve_precision("no", full_fp16=False, full_bf16=False, no_half_vae=False, device="cpu", warn=print)
    models = load_models(cfg, prec, tmp_path / "models", print, print)
    assert stored_fp8_share(models.unet) > 0.5  # every block Linear's base weight; LoRA and norms excluded
    block = models.unet.transformer_blocks[0].attn.to_q
    assert block.base_layer.weight.dtype == STORAGE
    # the AdaLN modulation Linears (a quarter of Flux's weights, 6.5 GB in bf16) are stored in fp8 as sd-scripts
    # stores them; diffusers' default skip list keeps every Linear named *norm* in the compute dtype
    modulation = {n: m for n, m in models.unet.named_modules() if n.endswith(("norm1.linear", "norm.linear"))}
    assert modulation and all(m.weight.dtype == STORAGE for m in modulation.values()), sorted(modulation)
    assert models.unet.norm_out.linear.weight.dtype == STORAGE
    assert all(p.dtype == torch.float32 for p in models.lora.parameters())
    assert train(cfg, tmp_path / "fp8") == 0
    assert train(flux_config(tiny_model, dataset, training__max_train_steps=2), tmp_path / "full") == 0
    fp8, full = losses(tmp_path / "fp8"), losses(tmp_path / "full")
    assert fp8 != full and fp8 == pytest.approx(full, rel=0.2)  # fp8 rounding of the base, nothing more



@pytest.mark.parametrize(("mixed", "vae"), [("bf16", "bf16"), ("no", "no"), ("bf16", "no")],
                         ids=["bf16", "no", "bf16-float32-vae"])
def test_frozen_parts_are_read_straight_in_the_run_weight_dtype(tiny_model, dataset, tmp_path, monkeypatch, mixed,
                                                                  vae):
    """A 12B transformer read in float32 first takes 48 GB of RAM: the loader itself must return the run's dtype
    (bf16 for a bf16 LoRA run, float32 for a float32 one), the VAE in the run's VAE dtype (no_half_vae: float32
    beside a bf16 transformer)."""
    import trainer.models.flux_loading as flux_loading
    from trainer.engine.build import load_models
    from trainer.engine.precision import DTYPES, Precision

    read, original = {}, flux_loading.load_flux_parts

    def spy(*args, **kwargs):
        parts = original(*args, **kwargs)
        read.update({name: {p.dtype for p in getattr(parts, name).parameters()}
                     for name in ("transformer", "text_encoder", "text_encoder_2", "vae")})
        return parts

    monkeypatch.setattr(flux_loading, "load_flux_parts", spy)
    dtype = DTYPES[mixed]  # built by hand: resolve_precision turns bf16 into float32 on a CPU
    prec = Precision("cpu", mixed, weight_dtype=dtype, adapter_dtype=torch.float32, vae_dtype=DTYPES[vae])
    models = load_models(flux_config(tiny_model, dataset), prec, tmp_path / "models", print, print)
    assert read == {**{name: {dtype} for name in ("transformer", "text_encoder", "text_encoder_2")},
                    "vae": {DTYPES[vae]}}
    assert {p.dtype for p in models.lora.parameters()} == {torch.float32}  # the LoRA itself trains in float32
