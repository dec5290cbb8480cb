"""Cross-field rules: each fires on its case, names the field and the fix, and is silent on the defaults."""

from __future__ import annotations

import re

import pytest

from trainer.config import TrainConfig, check, config_from_dict, errors_of, parse_resolution
from trainer.config.presets import KINDS, apply_presets, list_presets

CJK = re.compile(r"[\u3400-\u9fff]")
READY = {"model": {"base_model": "runwayml/sd15"}, "dataset": {"train_data_dir": "/data/train"}}


def findings(tables: dict, field: str, *, for_training: bool = False):
    cfg = config_from_dict(tables)
    hits = [f for f in check(cfg, for_training=for_training) if f.field == field]
    for f in hits:
        assert f.en and CJK.search(f.zh), "every finding is readable in both languages"
    return hits


def test_defaults_are_clean():
    assert check(TrainConfig(), for_training=False) == []
    assert check(config_from_dict(READY)) == []


def test_defaults_need_paths_only_for_a_run():
    fields = {f.field for f in check(TrainConfig())}
    assert fields == {"model.base_model", "dataset.train_data_dir"}


def test_noise_offset_with_multires_noise():
    (f,) = findings({"noise": {"noise_offset": 0.1, "multires_noise_iterations": 6}}, "noise.multires_noise_iterations")
    assert f.level == "error" and "noise_offset" in f.en and "0" in f.en
    assert not findings({"noise": {"noise_offset": 0.1}}, "noise.multires_noise_iterations")


def test_every_noise_mistake_is_named_at_once():
    """A user fixing a config sees all its noise errors in one check, not one per try."""
    cfg = config_from_dict({"noise": {"noise_offset": 0.1, "multires_noise_iterations": 6, "min_timestep": 500,
                                      "max_timestep": 400, "ip_noise_gamma_random_strength": True}})
    fields = {f.field for f in errors_of(check(cfg, for_training=False))}
    assert {"noise.multires_noise_iterations", "noise.max_timestep", "noise.ip_noise_gamma_random_strength"} <= fields


@pytest.mark.parametrize("field,value", [
    ("shuffle_caption", True), ("caption_dropout_rate", 0.1), ("caption_tag_dropout_rate", 0.1),
    ("caption_dropout_every_n_epochs", 3),
])
def test_text_encoder_cache_with_changing_captions(field, value):
    tables = {"speed": {"cache_text_encoder_outputs": True}, "training": {"network_train_unet_only": True},
              "caption": {field: value}}
    (f,) = findings(tables, f"caption.{field}")
    assert f.level == "error" and "cache_text_encoder_outputs" in f.en
    del tables["speed"]
    assert not findings(tables, f"caption.{field}")


def test_text_encoder_cache_while_training_the_text_encoder():
    (f,) = findings({"speed": {"cache_text_encoder_outputs_to_disk": True}}, "speed.cache_text_encoder_outputs")
    assert f.level == "error" and "network_train_unet_only" in f.en
    assert not findings({"speed": {"cache_text_encoder_outputs": True}, "training": {"network_train_unet_only": True}},
                        "speed.cache_text_encoder_outputs")


@pytest.mark.parametrize("field", ["color_aug", "random_crop"])
def test_latent_cache_with_image_augmentation(field):
    (f,) = findings({"augment": {field: True}}, f"augment.{field}")  # cache_latents is on by default
    assert f.level == "error" and "cache_latents" in f.en
    assert not findings({"augment": {field: True}, "speed": {"cache_latents": False}}, f"augment.{field}")
    assert not findings({"augment": {"flip_aug": True}}, "augment.flip_aug")  # flipping is cache-safe


def test_resolution_multiple_of_64():
    (f,) = findings({"dataset": {"resolution": "500,512", "enable_bucket": False}}, "dataset.resolution")
    assert f.level == "error" and "64" in f.en and "448,512" in f.en
    # with buckets it is only an area, as in sd-scripts: said, not refused
    (f,) = findings({"dataset": {"resolution": "512,650"}}, "dataset.resolution")
    assert f.level == "warning" and "576x576" in f.en and "512,640" in f.en
    assert not findings({"dataset": {"resolution": "768x512"}}, "dataset.resolution")
    # SDXL accepts multiples of 32
    sdxl = {"model": {"family": "sdxl"}, "dataset": {"resolution": "1024,992", "bucket_reso_steps": 32}}
    assert not findings(sdxl, "dataset.resolution") and not findings(sdxl, "dataset.bucket_reso_steps")


@pytest.mark.parametrize("text", ["abc", "512,512,512", "0", "32,32", ""])
def test_unreadable_or_tiny_resolution(text):
    (f,) = findings({"dataset": {"resolution": text}}, "dataset.resolution")
    assert f.level == "error"
    with pytest.raises(ValueError):
        parse_resolution(text)


def test_parse_resolution_forms():
    assert parse_resolution("512") == (512, 512)
    assert parse_resolution(" 768 , 512 ") == (768, 512)
    assert parse_resolution("640x448") == (640, 448)


def test_bucket_values_multiple_of_64_and_32_only_for_sdxl():
    (f,) = findings({"dataset": {"bucket_reso_steps": 32}}, "dataset.bucket_reso_steps")
    assert f.level == "error" and "SDXL" in f.en
    (f,) = findings({"dataset": {"min_bucket_reso": 300}}, "dataset.min_bucket_reso")
    assert "256" in f.en
    (f,) = findings({"dataset": {"max_bucket_reso": 1000}}, "dataset.max_bucket_reso")
    assert "960" in f.en
    sdxl = {"model": {"family": "sdxl"}, "dataset": {"bucket_reso_steps": 32, "min_bucket_reso": 480}}
    assert not findings(sdxl, "dataset.min_bucket_reso")
    sdxl["dataset"]["bucket_reso_steps"] = 64  # min/max must also be multiples of the bucket step
    assert findings(sdxl, "dataset.min_bucket_reso")
    (f,) = findings({"dataset": {"min_bucket_reso": 1024, "max_bucket_reso": 512}}, "dataset.min_bucket_reso")
    assert "max_bucket_reso" in f.en
    off = {"dataset": {"enable_bucket": False, "min_bucket_reso": 300}}
    assert not findings(off, "dataset.min_bucket_reso")


@pytest.mark.parametrize("optimizer", ["DAdaptAdam", "Prodigy"])
def test_adaptive_optimizer_with_lr_not_1(optimizer):
    (f,) = findings({"optimizer": {"optimizer_type": optimizer, "learning_rate": 1e-4}}, "optimizer.learning_rate")
    assert f.level == "warning" and optimizer in f.en and "1" in f.en
    (f,) = findings({"optimizer": {"optimizer_type": optimizer, "learning_rate": 1.0, "unet_lr": 0.5}},
                    "optimizer.unet_lr")
    assert f.level == "warning"
    assert not findings({"optimizer": {"optimizer_type": optimizer, "learning_rate": 1.0}}, "optimizer.learning_rate")


def test_learning_rate_together_with_unet_and_text_encoder_lr():
    (f,) = findings({"optimizer": {"unet_lr": 1e-4, "text_encoder_lr": 5e-5}}, "optimizer.learning_rate")
    assert f.level == "warning" and "unet_lr" in f.en and "text_encoder_lr" in f.en
    # learning_rate still drives the U-Net when only the text encoder has its own rate
    assert not findings({"optimizer": {"text_encoder_lr": 5e-5}}, "optimizer.learning_rate")
    # ... and it is unused when only the U-Net is trained and has its own rate
    assert findings({"optimizer": {"unet_lr": 1e-4}, "training": {"network_train_unet_only": True}},
                    "optimizer.learning_rate")


def test_fp16_saving_of_bf16_training():
    tables = {"speed": {"mixed_precision": "bf16", "full_bf16": True}, "save": {"save_precision": "fp16"}}
    (f,) = findings(tables, "save.save_precision")
    assert f.level == "warning" and "bf16" in f.en
    tables["save"]["save_precision"] = "bf16"
    assert not findings(tables, "save.save_precision")


def test_option_that_does_not_apply_to_the_family():
    (f,) = findings({"model": {"family": "flux", "vae": "/models/vae.safetensors"}}, "model.vae")
    assert f.level == "error" and "sd15/sdxl" in f.en and "model.family" in f.en
    (f,) = findings({"model": {"family": "flux"}, "other": {"clip_skip": 2}}, "other.clip_skip")
    assert "sd15" in f.en and "flux" in f.en
    assert not findings({"other": {"clip_skip": 2}}, "other.clip_skip")


def test_full_precision_flags_need_their_mixed_precision():
    (f,) = findings({"speed": {"mixed_precision": "bf16", "full_fp16": True}}, "speed.full_fp16")
    assert f.level == "error" and "fp16" in f.en
    (f,) = findings({"speed": {"mixed_precision": "fp16", "full_bf16": True}}, "speed.full_bf16")
    assert f.level == "error"


def test_unet_only_and_text_encoder_only_together():
    tables = {"training": {"network_train_unet_only": True, "network_train_text_encoder_only": True}}
    (f,) = findings(tables, "training.network_train_text_encoder_only")
    assert f.level == "error" and "network_train_unet_only" in f.en


def test_adafactor_scheduler_needs_adafactor():
    (f,) = findings({"optimizer": {"lr_scheduler": "adafactor"}}, "optimizer.lr_scheduler")
    assert f.level == "error" and "AdaFactor" in f.en
    assert not findings({"optimizer": {"lr_scheduler": "adafactor", "optimizer_type": "AdaFactor"}},
                        "optimizer.lr_scheduler")


@pytest.mark.parametrize("tables, field, unused_with", [
    ({"optimizer": {"lr_scheduler": "constant", "lr_warmup_steps": 100}}, "optimizer.lr_warmup_steps", "constant"),
    ({"optimizer": {"lr_scheduler": "adafactor", "optimizer_type": "AdaFactor", "lr_warmup_steps": 100}},
     "optimizer.lr_warmup_steps", "adafactor"),
    ({"optimizer": {"lr_scheduler": "cosine", "lr_scheduler_power": 2.0}}, "optimizer.lr_scheduler_power", "cosine"),
    ({"speed": {"persistent_data_loader_workers": True}}, "speed.persistent_data_loader_workers", "0"),
    ({"speed": {"text_encoder_batch_size": 4}}, "speed.text_encoder_batch_size", "cache_text_encoder_outputs"),
])
def test_settings_the_engine_would_ignore_are_warned(tables, field, unused_with):
    (f,) = findings(tables, field)
    assert f.level == "warning" and unused_with in f.en


@pytest.mark.parametrize("tables, field", [
    ({"optimizer": {"lr_scheduler": "constant_with_warmup", "lr_warmup_steps": 100}}, "optimizer.lr_warmup_steps"),
    ({"optimizer": {"lr_scheduler": "polynomial", "lr_scheduler_power": 2.0}}, "optimizer.lr_scheduler_power"),
    ({"speed": {"persistent_data_loader_workers": True, "max_data_loader_n_workers": 2}},
     "speed.persistent_data_loader_workers"),
    ({"speed": {"text_encoder_batch_size": 4, "cache_text_encoder_outputs": True},
      "training": {"network_train_unet_only": True}}, "speed.text_encoder_batch_size"),
])
def test_the_same_settings_where_they_apply_are_clean(tables, field):
    assert not findings(tables, field)


def test_num_cycles_without_restarts():
    (f,) = findings({"optimizer": {"lr_scheduler_num_cycles": 3}}, "optimizer.lr_scheduler_num_cycles")
    assert f.level == "warning" and "cosine_with_restarts" in f.en
    assert not findings({"optimizer": {"lr_scheduler": "cosine_with_restarts", "lr_scheduler_num_cycles": 3}},
                        "optimizer.lr_scheduler_num_cycles")


def test_caption_extension_needs_a_dot():
    (f,) = findings({"caption": {"caption_extension": "txt"}}, "caption.caption_extension")
    assert f.level == "error" and ".txt" in f.en


def test_alpha_above_dim():
    (f,) = findings({"network": {"network_dim": 8, "network_alpha": 16.0}}, "network.network_alpha")
    assert f.level == "warning" and "network_dim" in f.en


def test_sampling_without_prompts():
    (f,) = findings({"sampling": {"sample_every_n_epochs": 1}}, "sampling.sample_prompts")
    assert f.level == "warning"
    assert not findings({"sampling": {"sample_every_n_epochs": 1, "sample_prompts": "1girl"}}, "sampling.sample_prompts")


def test_v_parameterization_on_sd15():
    (f,) = findings({"model": {"v_parameterization": True}}, "model.v_parameterization")
    assert f.level == "warning"


def test_paths_are_required_for_a_run_only():
    assert findings({}, "model.base_model", for_training=True)
    assert findings({}, "dataset.train_data_dir", for_training=True)
    assert not findings({}, "model.base_model", for_training=False)


def test_errors_of_keeps_only_errors():
    cfg = config_from_dict({"network": {"network_dim": 8, "network_alpha": 16.0}, "noise": {
        "noise_offset": 0.1, "multires_noise_iterations": 6}})
    assert [f.field for f in errors_of(check(cfg, for_training=False))] == ["noise.multires_noise_iterations"]


@pytest.mark.parametrize("preset", list_presets(), ids=lambda p: p.name)
def test_every_preset_validates(preset):
    assert preset.kind in KINDS
    assert CJK.search(preset.title["zh"]) and CJK.search(preset.about["zh"])
    assert not CJK.search(preset.title["en"] + preset.about["en"])
    assert preset.overlay, "a preset sets something"
    cfg = apply_presets([preset.name])
    errors = errors_of(check(cfg, for_training=False))
    assert all("not supported yet" in f.en for f in errors), [f.text() for f in errors]
    if preset.family:  # the family a preset is labelled with is the one it configures
        assert cfg.model.family == preset.family


def test_presets_cover_the_issue_list_and_stack():
    names = {p.name: p for p in list_presets()}
    novice = {p.name for p in names.values() if p.kind == "novice" and p.family == "sd15"}
    assert len(novice) >= 3
    assert {p.family for p in names.values() if p.kind == "expert"} == {"sd15", "sdxl", "flux"}
    tiers = sorted(p.name for p in names.values() if p.kind == "memory" and p.family in (None, "sd15"))
    assert [t for t in ("6", "8", "12", "16", "24") if not any(f"-{t}gb" in n for n in tiers)] == []
    for n in novice:
        for t in tiers:  # a novice preset with a memory tier on top is still a valid run
            cfg = apply_presets([n, t])
            assert not errors_of(check(cfg, for_training=False)), (n, t)


def test_output_name_must_be_a_plain_file_name():
    from trainer.config import check, config_from_dict

    for bad in ("../../x", "a/b", "c:\\\\x", ".."):
        found = [f for f in check(config_from_dict({"save": {"output_name": bad}}), for_training=False)]
        assert any(f.field == "save.output_name" and f.level == "error" for f in found), bad
    ok = check(config_from_dict({"save": {"output_name": "my-lora.v2"}}), for_training=False)
    assert not [f for f in ok if f.field == "save.output_name"]


@pytest.mark.parametrize(("tables", "field"), [
    ({"optimizer": {"unet_lr": 0.0}}, "optimizer.unet_lr"),
    ({"optimizer": {"text_encoder_lr": 0.0}}, "optimizer.text_encoder_lr"),
    ({"optimizer": {"learning_rate": 0.0}}, "optimizer.learning_rate"),
    ({"optimizer": {"learning_rate": 0.0, "unet_lr": 1e-4}}, "optimizer.learning_rate"),  # still drives the TE
])
def test_a_zero_learning_rate_for_a_trained_part_is_an_error(tables, field):
    (f,) = [f for f in findings(tables, field) if f.level == "error"]
    assert "0" in f.en and ("empty" in f.en or "network_train" in f.en)


def test_a_zero_learning_rate_for_an_untrained_part_is_fine():
    assert not errors_of(check(config_from_dict({"optimizer": {"text_encoder_lr": 0.0},
                                                 "training": {"network_train_unet_only": True}}), for_training=False))
    assert not errors_of(check(config_from_dict({"optimizer": {"learning_rate": 0.0, "unet_lr": 1e-4,
                                                               "text_encoder_lr": 1e-5}}), for_training=False))


@pytest.mark.parametrize("toml, says", [
    ('[optimizer]\nloss_type = "huber"\n', "sd-scripts' pseudo-Huber, c from the snr schedule"),
    ('[optimizer]\nloss_type = "smooth_l1"\nhuber_schedule = "none"\n', "PyTorch's smooth L1"),
    ('loss_type = "huber"\nhuber_schedule = "exponential"\n', "sd-scripts' pseudo-Huber, c from the exponential"),
    ("", "loss: l2"),
])
def test_check_says_which_loss_form_a_config_trains(tmp_path, capsys, toml, says):
    from trainer.__main__ import main as cli_main

    path = tmp_path / "run.toml"
    path.write_text(toml, encoding="utf-8")  # the third one is a flat sd-scripts file
    cli_main(["check", "--config", str(path), "--no-paths"])
    assert says in capsys.readouterr().out
