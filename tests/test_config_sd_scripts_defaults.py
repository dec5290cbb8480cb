"""An imported flat sd-scripts TOML trains what sd-scripts would train: omitted options take sd-scripts' defaults
(read from its train_util.py / train_network.py argument definitions), `check` lists them; Danlu files keep
Danlu's defaults; export then import is the identity; log_with "none"/"" turns logging off."""

from __future__ import annotations

import tomli_w

from tests.test_engine_train import tiny_model  # noqa: F401  (the tiny SD1.5 folder, once a module)
from trainer.config import TrainConfig, all_params, config_from_dict, load_config
from trainer.config.kohya import export_kohya
from trainer.config.schema import params_by_name
from trainer.config.sd_scripts import ARG_DEFAULTS

# The options of a typical `accelerate launch train_network.py ...` command line, as its --config_file.
TYPICAL = """\
pretrained_model_name_or_path = "/models/v1-5-pruned-emaonly.safetensors"
train_data_dir = "/data/mychar"
output_dir = "/out"
output_name = "mychar"
resolution = "512,512"
network_module = "networks.lora"
network_dim = 16
network_alpha = 8
learning_rate = 1e-4
max_train_epochs = 10
train_batch_size = 2
save_every_n_epochs = 2
mixed_precision = "fp16"
save_precision = "fp16"
optimizer_type = "AdamW8bit"
caption_extension = ".txt"
xformers = true
cache_latents = true
"""

# sd-scripts' effective value of every option TYPICAL leaves out (typed from its argparse definitions, so this
# table checks the one in trainer/config/sd_scripts.py rather than repeating it).
SD_SCRIPTS_EFFECTIVE = {
    "dataset.enable_bucket": False, "dataset.min_bucket_reso": 256, "dataset.max_bucket_reso": 1024,
    "dataset.bucket_reso_steps": 64, "dataset.bucket_no_upscale": False, "dataset.prior_loss_weight": 1.0,
    "dataset.reg_data_dir": "", "model.vae": "", "model.v_parameterization": False,
    "save.save_model_as": "safetensors", "save.save_every_n_steps": 0, "save.save_last_n_epochs": 0,
    "save.save_last_n_steps": 0, "save.save_state": False, "save.resume": "",
    "training.max_train_steps": 0,  # max_train_epochs is given: it decides
    "training.gradient_checkpointing": False, "training.gradient_accumulation_steps": 1,
    "training.network_train_unet_only": False, "training.network_train_text_encoder_only": False,
    "training.max_grad_norm": 1.0,
    "optimizer.unet_lr": None, "optimizer.text_encoder_lr": None, "optimizer.lr_scheduler": "constant",
    "optimizer.lr_scheduler_num_cycles": 1, "optimizer.lr_scheduler_power": 1.0, "optimizer.lr_warmup_steps": 0,
    "optimizer.loss_type": "l2", "optimizer.huber_c": 0.1, "optimizer.optimizer_args": [],
    "optimizer.min_snr_gamma": 0.0, "network.network_dropout": 0.0, "network.network_weights": "",
    "caption.shuffle_caption": False, "caption.keep_tokens": 0, "caption.keep_tokens_separator": "",
    "caption.max_token_length": 75, "caption.caption_dropout_rate": 0.0,
    "caption.caption_dropout_every_n_epochs": 0, "caption.caption_tag_dropout_rate": 0.0,
    "noise.noise_offset": 0.0, "noise.multires_noise_iterations": 0, "noise.multires_noise_discount": 0.3,
    "augment.color_aug": False, "augment.flip_aug": False, "augment.random_crop": False,
    "sampling.sample_sampler": "ddim", "sampling.sample_every_n_epochs": 0, "sampling.sample_every_n_steps": 0,
    "sampling.sample_steps": 30, "sampling.sample_cfg": 7.5,
    "logging.log_with": "none", "logging.logging_dir": "", "logging.log_prefix": "",
    "speed.full_fp16": False, "speed.full_bf16": False, "speed.no_half_vae": False,
    "speed.cache_latents_to_disk": False, "speed.cache_text_encoder_outputs": False,
    "speed.max_data_loader_n_workers": 8, "speed.persistent_data_loader_workers": False,
    "speed.vae_batch_size": 1, "other.clip_skip": 1,
}


def _value(cfg: TrainConfig, path: str):
    group, name = path.split(".")
    return getattr(getattr(cfg, group), name)


def test_typical_command_line_gets_sd_scripts_effective_settings(tmp_path):
    path = tmp_path / "train_network.toml"
    path.write_text(TYPICAL, encoding="utf-8")
    filled: list = []
    cfg = load_config(path, filled=filled)
    assert len(SD_SCRIPTS_EFFECTIVE) >= 30
    wrong = {p: (_value(cfg, p), want) for p, want in SD_SCRIPTS_EFFECTIVE.items() if _value(cfg, p) != want}
    assert not wrong
    # what the file sets is kept; xformers is the same attention as PyTorch's SDPA kernels
    assert (cfg.network.network_dim, cfg.network.network_alpha, cfg.training.max_train_epochs) == (16, 8.0, 10)
    assert cfg.speed.cache_latents is True and cfg.speed.sdpa is True and cfg.caption.caption_extension == ".txt"
    assert 0 <= cfg.training.seed < 2**32  # sd-scripts draws a random seed; Danlu keeps it in the config
    # the report names every filled setting whose value differs from Danlu's default, and only those
    listed = {f.path: f.value for f in filled}
    differs = {p for p, want in SD_SCRIPTS_EFFECTIVE.items() if want != params_by_name()[p.split(".")[1]].default}
    assert differs <= set(listed), differs - set(listed)
    assert {"dataset.enable_bucket", "optimizer.lr_scheduler", "logging.log_with", "training.seed",
            "speed.max_data_loader_n_workers", "sampling.sample_sampler"} <= set(listed)
    assert all(listed[p] != params_by_name()[p.split(".")[1]].default for p in listed)
    assert "save.save_every_n_epochs" not in listed  # set by the file


def test_empty_file_trains_sd_scripts_steps_network_and_rates():
    from trainer.config.kohya import import_kohya

    cfg = import_kohya({"train_data_dir": "/d"})
    assert cfg.training.max_train_steps == 1600 and cfg.optimizer.learning_rate == 2e-6
    assert (cfg.network.network_dim, cfg.network.network_alpha) == (4, 1.0)
    assert cfg.optimizer.optimizer_type == "AdamW" and cfg.save.output_name == "last"
    assert cfg.speed.mixed_precision == "no" and cfg.save.save_precision == "float"
    assert cfg.caption.caption_extension == ".caption" and cfg.speed.cache_latents is False
    assert cfg.speed.sdpa is False  # neither --sdpa nor --xformers: plain attention
    # dependent defaults: logging_dir turns TensorBoard on; full_fp16 saves fp16; both steps and epochs: epochs
    assert import_kohya({"logging_dir": "/logs"}).logging.log_with == "tensorboard"
    assert import_kohya({"full_fp16": True, "mixed_precision": "fp16"}).save.save_precision == "fp16"
    both = import_kohya({"max_train_steps": 500, "max_train_epochs": 3})
    assert (both.training.max_train_steps, both.training.max_train_epochs) == (0, 3)


def test_check_lists_what_it_filled_in(tmp_path, capsys):
    from trainer.__main__ import main

    path = tmp_path / "kohya.toml"
    path.write_text(TYPICAL, encoding="utf-8")
    main(["check", "--config", str(path), "--no-paths"])
    out = capsys.readouterr().out
    assert "filled in from sd-scripts' defaults" in out
    assert "dataset.enable_bucket = False" in out and "optimizer.lr_scheduler = 'constant'" in out
    # training from the shell says the same before it starts (this one stops at the missing paths)
    assert main(["train", "--config", str(path), "--run-dir", str(tmp_path / "run")]) != 0
    assert "dataset.enable_bucket = False" in capsys.readouterr().out
    danlu = tmp_path / "danlu.toml"
    danlu.write_text("schema_version = 1\n[network]\nnetwork_dim = 8\n", encoding="utf-8")
    main(["check", "--config", str(danlu), "--no-paths"])
    assert "filled in" not in capsys.readouterr().out


def test_danlu_toml_keeps_danlu_defaults(tmp_path):
    path = tmp_path / "danlu.toml"
    path.write_text("schema_version = 1\n[network]\nnetwork_dim = 8\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.dataset.enable_bucket is True and cfg.optimizer.lr_scheduler == "cosine"
    assert cfg.model_dump() == config_from_dict({"network": {"network_dim": 8}}).model_dump()


def _kohya_round_trip(cfg: TrainConfig, tmp_path) -> TrainConfig:
    out = tmp_path / "kohya.toml"
    out.write_text(tomli_w.dumps(export_kohya(cfg)), encoding="utf-8")
    return load_config(out, family=cfg.model.family)


def _sd_scripts_visible(cfg: TrainConfig) -> dict:
    return {p.path: _value(cfg, p.path) for p in all_params() if p.kohya_key and cfg.model.family in p.families}


def test_export_then_import_is_the_identity_for_danlu_defaults_and_step_counts(tmp_path):
    for cfg in (TrainConfig(),
                config_from_dict({"training": {"max_train_steps": 700}, "logging": {"log_with": "none"}}),
                config_from_dict({"dataset": {"enable_bucket": False}, "speed": {"cache_latents": False},
                                  "optimizer": {"lr_scheduler": "constant", "learning_rate": 2e-6}})):
        assert _sd_scripts_visible(_kohya_round_trip(cfg, tmp_path)) == _sd_scripts_visible(cfg)


def test_danlu_toml_round_trip_is_the_identity(tmp_path):
    from trainer.config import save_config

    cfg = config_from_dict({"logging": {"log_with": "none"}, "dataset": {"enable_bucket": False}})
    assert load_config(save_config(cfg, tmp_path / "c.toml")) == cfg


def test_every_default_names_a_real_sd_scripts_option_of_the_schema_or_one_danlu_lacks():
    kohya_keys = {p.kohya_key for p in all_params() if p.kohya_key}
    lacking = set(ARG_DEFAULTS) - kohya_keys
    # options Danlu has no parameter for: the header reports sd-scripts' value for them
    assert lacking <= {"face_crop_aug_range", "resize_interpolation", "training_comment", "huber_schedule",
                       "huber_scale", "debiased_estimation_loss", "noise_offset_random_strength",
                       "adaptive_noise_scale", "ip_noise_gamma", "ip_noise_gamma_random_strength",
                       "zero_terminal_snr", "fp8_base_unet", "validation_seed", "validate_every_n_epochs",
                       "max_validation_steps", "v2", "lowram", "xformers",
                       "model_type"}, lacking  # flux_train_network's flux/chroma switch: Danlu's family is flux


def test_log_with_empty_or_none_means_no_logging():
    for value in ("", "none", "None"):
        assert config_from_dict({"logging": {"log_with": value}}).logging.log_with == "none"
    from trainer.config.kohya import import_kohya

    assert import_kohya({"log_with": ""}).logging.log_with == "none"


def test_loader_workers_are_capped_at_the_cpu_count_as_in_sd_scripts(tiny_model, tmp_path, monkeypatch):  # noqa: F811
    import trainer.engine.session as session_mod
    import trainer.engine.speed as speed_mod
    from tests.engine_helpers import make_dataset, tiny_config
    from trainer.engine.run import train

    made = []
    real = session_mod.DataLoader
    monkeypatch.setattr(session_mod, "DataLoader", lambda *a, **k: made.append(k["num_workers"]) or real(*a, **k))
    monkeypatch.setattr(speed_mod.os, "cpu_count", lambda: 1)  # trainer.engine.speed.loader_options caps them
    cfg = tiny_config(tiny_model, make_dataset(tmp_path / "data", n=2), speed__max_data_loader_n_workers=8,
                      training__max_train_epochs=1, save__save_every_n_epochs=0)
    assert train(cfg, tmp_path / "run") == 0
    assert made == [1]


FLUX_ONLY_DEFAULTS = {"timestep_sampling", "sigmoid_scale", "model_prediction_type", "discrete_flow_shift",
                      "guidance_scale", "apply_t5_attn_mask", "weighting_scheme", "logit_mean", "logit_std",
                      "mode_scale", "model_type"}


def test_a_file_that_writes_each_default_out_imports():
    """GUIs write every option, defaults included (optimizer_type = "" for AdamW, model_type = "flux"): each
    sd-scripts default written out imports as what sd-scripts makes of it."""
    from trainer.config import ConfigError
    from trainer.config.kohya import import_kohya

    refused = {}
    for key, value in ARG_DEFAULTS.items():
        if value is None:  # TOML has no null: such an option is left out
            continue
        try:
            import_kohya({key: value}, family="flux" if key in FLUX_ONLY_DEFAULTS else None)
        except ConfigError as exc:
            refused[key] = [f.en for f in exc.findings]
    assert refused == {}
    assert import_kohya({"optimizer_type": ""}).optimizer.optimizer_type == "AdamW"
