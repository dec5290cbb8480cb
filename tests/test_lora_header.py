"""The header of a LoRA trained here holds every key sd-scripts writes, each value in sd-scripts' form; the base
model and LoRA hashes are computed as A1111 and its additional-networks extension compute them; the start of a run
is stated once; log_with "none" writes no TensorBoard files."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
import safetensors.torch
import torch
from PIL import Image

from tests.engine_helpers import make_dataset, tiny_config
from tests.test_engine_train import tiny_model  # noqa: F401  (the tiny SD1.5 folder, once a module)
from trainer.config import config_from_dict
from trainer.engine.run import train
from trainer.networks.hashes import base_model_identity
from trainer.networks.save import read_lora, save_lora

REFERENCE = Path("/work/shared/REFERENCE.md")
# The 93 keys of an SD1.5 LoRA written by sd-scripts (REFERENCE.md, "Header metadata sd-scripts writes").
SD_SCRIPTS_KEYS = """modelspec.architecture modelspec.date modelspec.implementation modelspec.implementation_version
modelspec.prediction_type modelspec.resolution modelspec.sai_model_spec modelspec.title ss_adaptive_noise_scale
ss_base_model_version ss_batch_size_per_device ss_bucket_info ss_bucket_no_upscale ss_cache_latents
ss_caption_dropout_every_n_epochs ss_caption_dropout_rate ss_caption_tag_dropout_rate ss_clip_skip ss_color_aug
ss_dataset_dirs ss_debiased_estimation ss_enable_bucket ss_epoch ss_face_crop_aug_range ss_flip_aug ss_fp8_base
ss_fp8_base_unet ss_full_fp16 ss_gradient_accumulation_steps ss_gradient_checkpointing ss_huber_c ss_huber_scale
ss_huber_schedule ss_ip_noise_gamma ss_ip_noise_gamma_random_strength ss_keep_tokens ss_learning_rate
ss_loss_type ss_lowram ss_lr_scheduler ss_lr_warmup_steps ss_max_bucket_reso ss_max_grad_norm
ss_max_token_length ss_max_train_steps ss_max_validation_steps ss_min_bucket_reso ss_min_snr_gamma
ss_mixed_precision ss_multires_noise_discount ss_multires_noise_iterations ss_network_alpha ss_network_dim
ss_network_dropout ss_network_module ss_new_sd_model_hash ss_noise_offset ss_noise_offset_random_strength
ss_num_batches_per_epoch ss_num_epochs ss_num_reg_images ss_num_train_images ss_num_validation_images
ss_optimizer ss_output_name ss_prior_loss_weight ss_random_crop ss_reg_dataset_dirs ss_resize_interpolation
ss_resolution ss_scale_weight_norms ss_sd_model_hash ss_sd_model_name ss_sd_scripts_commit_hash ss_seed
ss_session_id ss_shuffle_caption ss_steps ss_tag_frequency ss_text_encoder_lr ss_total_batch_size
ss_training_comment ss_training_finished_at ss_training_started_at ss_unet_lr ss_v2 ss_validate_every_n_epochs
ss_validate_every_n_steps ss_validation_seed ss_validation_split ss_zero_terminal_snr sshs_legacy_hash
sshs_model_hash""".split()


@pytest.fixture(scope="module")
def run(tiny_model, tmp_path_factory):  # noqa: F811
    data = make_dataset(tmp_path_factory.mktemp("data"), n=4)
    (data / "5_zk" / "000.txt").write_text("zk, red circle, zk", encoding="utf-8")  # a tag twice in one caption
    run_dir = tmp_path_factory.mktemp("run")
    cfg = tiny_config(
        tiny_model, data, caption__trigger_word="zkz", dataset__enable_bucket=False, other__clip_skip=2,
        optimizer__optimizer_args=["weight_decay=0.02"], optimizer__min_snr_gamma=5.0, noise__noise_offset=0.05,
        network__conv_dim=2, network__conv_alpha=0.5, sampling__sample_prompts="zk --d 1",
        sampling__sample_every_n_epochs=1, sampling__sample_width=64, sampling__sample_height=64,
        sampling__sample_steps=2, publish__metadata_title="ZK circles", publish__metadata_tags="circle, test")
    assert train(cfg, run_dir) == 0
    return run_dir, cfg, data


def test_reference_list_is_the_one_in_this_test():
    if REFERENCE.is_file():  # the shared facts file, when present, lists the same 93 keys
        text = REFERENCE.read_text(encoding="utf-8")
        section = text.split("## Header metadata sd-scripts writes")[1]
        listed = section.split("\n", 1)[1].split("\nForms:")[0]
        assert sorted(k.strip(" .\n") for k in listed.split(",")) == sorted(SD_SCRIPTS_KEYS)
    assert len(SD_SCRIPTS_KEYS) == 93


def test_header_has_every_sd_scripts_key_in_its_form(run):
    run_dir, cfg, data = run
    _, meta = read_lora(run_dir / "output" / "t.safetensors")
    missing = [k for k in SD_SCRIPTS_KEYS if k not in meta]
    assert not missing
    expected = {
        "ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "2.0",
        "ss_network_dropout": "None", "ss_base_model_version": "sd_v1", "ss_output_name": "t",
        "ss_resolution": "(64, 64)", "ss_num_train_images": "20", "ss_num_reg_images": "0",
        "ss_num_validation_images": "0", "ss_num_epochs": "2", "ss_epoch": "2", "ss_steps": "20",
        "ss_max_train_steps": "20", "ss_num_batches_per_epoch": "10", "ss_batch_size_per_device": "2",
        "ss_total_batch_size": "2", "ss_gradient_accumulation_steps": "1", "ss_learning_rate": "0.001",
        "ss_unet_lr": "None", "ss_text_encoder_lr": "None", "ss_lr_scheduler": "constant",
        "ss_lr_warmup_steps": "0", "ss_optimizer": "torch.optim.adamw.AdamW(weight_decay=0.02)",
        "ss_mixed_precision": "no", "ss_full_fp16": "False", "ss_v2": "False", "ss_clip_skip": "2",
        "ss_max_token_length": "None", "ss_cache_latents": "True", "ss_seed": "7", "ss_lowram": "False",
        "ss_noise_offset": "0.05", "ss_multires_noise_iterations": "None", "ss_multires_noise_discount": "0.3",
        "ss_adaptive_noise_scale": "None", "ss_zero_terminal_snr": "False", "ss_training_comment": "None",
        "ss_max_grad_norm": "1.0", "ss_caption_dropout_rate": "0.0", "ss_caption_dropout_every_n_epochs": "0",
        "ss_caption_tag_dropout_rate": "0.0", "ss_face_crop_aug_range": "None", "ss_prior_loss_weight": "1.0",
        "ss_min_snr_gamma": "5.0", "ss_scale_weight_norms": "None", "ss_ip_noise_gamma": "None",
        "ss_debiased_estimation": "False", "ss_noise_offset_random_strength": "False",
        "ss_ip_noise_gamma_random_strength": "False", "ss_loss_type": "l2", "ss_huber_schedule": "snr",
        "ss_huber_scale": "1.0", "ss_huber_c": "0.1", "ss_fp8_base": "False", "ss_fp8_base_unet": "False",
        "ss_validation_seed": "None", "ss_validation_split": "0.0", "ss_max_validation_steps": "None",
        "ss_validate_every_n_epochs": "None", "ss_validate_every_n_steps": "None",
        "ss_resize_interpolation": "None", "ss_color_aug": "False", "ss_flip_aug": "False",
        "ss_random_crop": "False", "ss_shuffle_caption": "False", "ss_enable_bucket": "False",
        "ss_bucket_no_upscale": "False", "ss_min_bucket_reso": "64", "ss_max_bucket_reso": "128",
        "ss_keep_tokens": "0", "ss_bucket_info": "null", "ss_sd_model_name": "tiny-sd15",
        "ss_sd_model_hash": "IsADirectory", "ss_new_sd_model_hash": "IsADirectory",
        "ss_sd_scripts_commit_hash": "(unknown)",
        "modelspec.sai_model_spec": "1.0.1", "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.implementation": "diffusers", "modelspec.prediction_type": "epsilon",
        "modelspec.resolution": "64x64", "modelspec.title": "ZK circles", "modelspec.trigger_phrase": "zkz",
        "modelspec.tags": "circle, test", "modelspec.encoder_layer": "2",
    }
    wrong = {k: (meta.get(k), v) for k, v in expected.items() if meta.get(k) != v}
    assert not wrong
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "2", "conv_alpha": "0.5"}
    assert json.loads(meta["ss_dataset_dirs"]) == {"5_zk": {"n_repeats": 5, "img_count": 4}}
    assert json.loads(meta["ss_reg_dataset_dirs"]) == {}
    # every occurrence counts, lower-cased, in the order first seen (000.txt first: "zk, red circle, zk")
    freq = json.loads(meta["ss_tag_frequency"])["5_zk"]
    assert list(freq)[:3] == ["zk", "red circle", "circle"] and freq["zk"] == 5 and freq["red circle"] == 1
    assert 0 <= int(meta["ss_session_id"]) <= 2**32
    started, finished = float(meta["ss_training_started_at"]), float(meta["ss_training_finished_at"])
    assert finished >= started
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", meta["modelspec.date"])
    assert meta["modelspec.implementation_version"].startswith("danlu/")


def test_epoch_file_shares_the_session_and_counts_its_own_epoch(run):
    run_dir, _, _ = run
    _, last = read_lora(run_dir / "output" / "t.safetensors")
    _, first = read_lora(run_dir / "output" / "t-000001.safetensors")
    assert first["ss_session_id"] == last["ss_session_id"]
    assert (first["ss_epoch"], first["ss_steps"]) == ("1", "10")
    assert "modelspec.thumbnail" not in first  # saved before the first previews existed


def test_danlu_keys_hold_the_full_config_and_the_thumbnail_is_a_sample(run):
    run_dir, cfg, _ = run
    _, meta = read_lora(run_dir / "output" / "t.safetensors")
    assert config_from_dict(__import__("tomllib").loads(meta["danlu_config"])) == cfg
    url = meta["modelspec.thumbnail"]
    assert url.startswith("data:image/png;base64,")
    thumb = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert thumb.size == (64, 64)  # the 64x64 sample, under the 256 px limit


def test_sshs_hashes_are_the_additional_networks_hashes(run, tmp_path):
    run_dir, _, _ = run
    path = run_dir / "output" / "t.safetensors"
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    _, meta = read_lora(path)
    assert meta["sshs_model_hash"] == hashlib.sha256(data[8 + n:]).hexdigest()
    # a LoRA over 1 MiB: the legacy hash is that of the file written with only its ss_* keys (sd-scripts)
    big = {"lora_unet_x.lora_down.weight": torch.arange(400_000, dtype=torch.float32).reshape(400, 1000),
           "lora_unet_x.alpha": torch.tensor(1.0)}
    saved = save_lora(tmp_path / "big.safetensors", big, {"ss_network_dim": "400", "modelspec.title": "x"},
                      precision="float")
    tensors, header = read_lora(saved)
    ss_only = tmp_path / "ss_only.safetensors"
    safetensors.torch.save_file(tensors, str(ss_only), metadata={"ss_network_dim": "400"})
    raw = ss_only.read_bytes()
    assert header["sshs_legacy_hash"] == hashlib.sha256(raw[0x100000:0x110000]).hexdigest()[:8]
    assert header["sshs_legacy_hash"] != hashlib.sha256(b"").hexdigest()[:8]


def test_base_model_hashes_as_a1111_computes_them(tmp_path):
    known = tmp_path / "model.safetensors"
    known.write_bytes(bytes(range(256)) * 8192)  # 2 MiB; hashes below from sha256sum and dd on the same bytes
    found = base_model_identity(str(known))
    assert found == {"ss_sd_model_name": "model.safetensors", "ss_sd_model_hash": "7daca209",
                     "ss_new_sd_model_hash": "91d3beb88a9b2f778a6c44a1c53b63d3c79931845a9aef84b3fb414610bd1938"}
    assert base_model_identity("stable-diffusion-v1-5/stable-diffusion-v1-5") == {
        "ss_sd_model_name": "stable-diffusion-v1-5/stable-diffusion-v1-5"}  # a hub id: named, not hashed


def test_start_is_stated_once_in_console_and_log(run):
    run_dir, _, _ = run
    log = (run_dir / "train.log").read_text(encoding="utf-8")
    assert log.count("adapter modules:") == 1
    line = next(x for x in log.splitlines() if "adapter modules:" in x)
    assert re.search(r"\d+ unet, \d+ text_encoder \(\d+ in all\); trainable parameters: [\d,]+", line)
    assert "device: cpu" in log and "attention: SDPA on" in log and "precision: mixed no" in log
    assert "steps per epoch: 10; total steps: 20 (2 epochs)" in log
    from trainer.events import read_events

    started = [e for e in read_events(run_dir)[0] if e["type"] == "started"]
    assert len(started) == 1 and started[0]["summary"]["modules"]["unet"] > 0
    assert started[0]["summary"]["trainable_params"] > 0


def test_logging_off_writes_no_tensorboard_files(tiny_model, tmp_path):  # noqa: F811
    data = make_dataset(tmp_path / "data", n=2)
    cfg = tiny_config(tiny_model, data, logging__log_with="none", training__max_train_epochs=1,
                      save__save_every_n_epochs=0)
    assert train(cfg, tmp_path / "run") == 0
    assert not list((tmp_path / "run").rglob("events.out.tfevents.*"))
    on = tiny_config(tiny_model, data, training__max_train_epochs=1, save__save_every_n_epochs=0)
    assert train(on, tmp_path / "run_on") == 0
    assert list((tmp_path / "run_on").rglob("events.out.tfevents.*"))


@pytest.mark.parametrize(("family", "architecture", "implementation"), [
    ("sd15", "stable-diffusion-v1/lora", "diffusers"),
    ("sdxl", "stable-diffusion-xl-v1-base/lora", "https://github.com/Stability-AI/generative-models"),
])
def test_modelspec_per_family_as_sd_scripts_names_it(family, architecture, implementation):
    from trainer.families import get_family
    from trainer.networks.modelspec import modelspec

    fam = get_family(family)
    spec = modelspec(architecture=fam.modelspec_architecture, implementation=fam.modelspec_implementation,
                     title="t", resolution=(1024, 768), prediction_type="epsilon", timestamp=0,
                     implementation_version="danlu/x", optional={"description": "", "tags": "a"})
    assert spec["modelspec.architecture"] == architecture and spec["modelspec.implementation"] == implementation
    assert spec["modelspec.prediction_type"] == "epsilon" and spec["modelspec.resolution"] == "1024x768"
    assert "modelspec.description" not in spec and spec["modelspec.tags"] == "a"


def test_sdxl_header_has_every_sd_scripts_key(tmp_path):
    from trainer.models.tiny import build_tiny_sdxl

    model = tmp_path / "tiny-sdxl"
    build_tiny_sdxl(seed=0).save_pretrained(model)
    cfg = tiny_config(model, make_dataset(tmp_path / "data", n=2), model__family="sdxl",
                      training__max_train_epochs=1, save__save_every_n_epochs=0)
    assert train(cfg, tmp_path / "run") == 0
    _, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert not [k for k in SD_SCRIPTS_KEYS if k not in meta]
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert meta["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"
    assert meta["modelspec.implementation"] == "https://github.com/Stability-AI/generative-models"
    assert meta["ss_clip_skip"] == "None"  # SDXL uses fixed layers: sd-scripts has no clip_skip there
    log = (tmp_path / "run" / "train.log").read_text(encoding="utf-8")
    assert re.search(r"adapter modules: \d+ unet, \d+ text_encoder, \d+ text_encoder_2", log)
