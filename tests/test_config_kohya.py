"""Import of kohya sd-scripts / SD-Trainer (lora-scripts) TOML files and export to one sd-scripts accepts."""

from __future__ import annotations

import tomllib

import pytest
import tomli_w

from trainer.config import (
    ConfigError,
    TrainConfig,
    all_params,
    check,
    config_from_dict,
    errors_of,
    load_config,
)
from trainer.config.kohya import NETWORK_ARG_FIELDS, export_kohya, import_kohya, prompts_for_sd_scripts

# What SD-Trainer writes to config/autosave/<time>.toml for an SD1.5 LoRA (keys as its forms name them).
SD_TRAINER = """\
model_train_type = "sd-lora"
pretrained_model_name_or_path = "./sd-models/anything-v5.safetensors"
v2 = false
train_data_dir = "./train/aki"
prior_loss_weight = 1
resolution = "512,768"
enable_bucket = true
min_bucket_reso = 256
max_bucket_reso = 1024
bucket_reso_steps = 64
bucket_no_upscale = true
output_name = "aki"
output_dir = "./output"
save_model_as = "safetensors"
save_precision = "fp16"
save_every_n_epochs = 2
max_train_epochs = 12
train_batch_size = 2
gradient_checkpointing = true
gradient_accumulation_steps = 1
network_train_unet_only = false
network_train_text_encoder_only = false
learning_rate = "1e-4"
unet_lr = "2e-4"
text_encoder_lr = "2e-5"
lr_scheduler = "cosine_with_restarts"
lr_warmup_steps = 50
lr_scheduler_num_cycles = 2
optimizer_type = "AdamW8bit"
network_module = "networks.lora"
network_dim = 32
network_alpha = 16
network_dropout = 0
network_args_custom = ["conv_dim=8", "conv_alpha=4"]
optimizer_args_custom = ["weight_decay=0.01"]
enable_block_weights = false
enable_base_weight = false
log_with = "tensorboard"
log_prefix = "aki"
logging_dir = "./logs"
caption_extension = ".txt"
shuffle_caption = true
keep_tokens = 1
max_token_length = 255
caption_dropout_rate = 0.05
noise_offset = 0.05
min_snr_gamma = 5
seed = 1337
clip_skip = 2
mixed_precision = "fp16"
xformers = true
lowram = false
cache_latents = true
cache_latents_to_disk = true
persistent_data_loader_workers = true
enable_preview = true
positive_prompts = "masterpiece, 1girl, aki --w 512 --h 768"
negative_prompts = "lowres, bad anatomy"
sample_width = 512
sample_height = 768
sample_cfg = 7
sample_seed = 2333
sample_steps = 24
sample_sampler = "k_euler_a"
sample_every_n_epochs = 2
ui_custom_params = "noise_offset = 0.08"
"""


def test_sd_trainer_file_imports_into_the_right_fields(tmp_path):
    path = tmp_path / "20240221-101010.toml"
    path.write_bytes(SD_TRAINER.encode("gbk"))  # Chinese Windows: must not crash
    cfg = load_config(path)
    assert cfg.model.family == "sd15" and cfg.model.training_type == "lora"
    assert cfg.model.base_model == "./sd-models/anything-v5.safetensors"
    assert cfg.dataset.resolution == "512,768" and cfg.dataset.bucket_no_upscale is True
    assert cfg.save.output_name == "aki" and cfg.save.save_every_n_epochs == 2
    assert cfg.training.max_train_epochs == 12 and cfg.training.gradient_checkpointing is True
    assert (cfg.optimizer.learning_rate, cfg.optimizer.unet_lr, cfg.optimizer.text_encoder_lr) == (1e-4, 2e-4, 2e-5)
    assert cfg.optimizer.lr_scheduler_num_cycles == 2 and cfg.optimizer.lr_warmup_steps == 50
    assert cfg.optimizer.optimizer_args == ["weight_decay=0.01"] and cfg.optimizer.min_snr_gamma == 5
    assert (cfg.network.network_dim, cfg.network.network_alpha) == (32, 16.0)
    assert (cfg.network.conv_dim, cfg.network.conv_alpha) == (8, 4.0) and cfg.network.network_args == []
    assert cfg.caption.keep_tokens == 1 and cfg.caption.caption_dropout_rate == 0.05
    assert cfg.caption.max_token_length == 225  # 255 works as three 75-token chunks in sd-scripts
    assert cfg.noise.noise_offset == 0.05 and cfg.other.clip_skip == 2
    assert cfg.speed.mixed_precision == "fp16" and cfg.speed.cache_latents_to_disk is True
    assert cfg.speed.sdpa is True  # xformers = true: the same attention, from the kernels Danlu has
    assert cfg.sampling.sample_prompts.startswith("masterpiece") and cfg.sampling.sample_negative_prompt
    assert (cfg.sampling.sample_height, cfg.sampling.sample_seed, cfg.sampling.sample_sampler) == (768, 2333, "euler_a")
    assert cfg.logging.log_prefix == "aki"
    assert cfg.other.custom_toml == "noise_offset = 0.08"
    from trainer.config import effective_config

    assert effective_config(cfg).noise.noise_offset == 0.08  # SD-Trainer's flat custom params apply
    findings = check(cfg, for_training=False)
    errors = {f.field: f for f in findings if f.level == "error"}
    assert errors == {}  # 225 tokens train (three 75-token chunks)
    assert "optimizer.learning_rate" in {f.field for f in findings}  # unused next to unet_lr/text_encoder_lr


def test_sd_scripts_sections_carry_no_meaning():
    # SD-Trainer's old default.toml groups sd-scripts keys under [model], [dataset], [training], ... —
    # table names Danlu also uses, with other keys inside.
    text = """
[model]
v2 = false
pretrained_model_name_or_path = "./models/model.ckpt"
[dataset]
train_data_dir = "./train/input"
cache_latents = true
shuffle_caption = true
[additional_network]
network_dim = 64
network_args = ["conv_dim=4", "algo=loha", "dropout=0.1"]
[optimizer]
unet_lr = 1e-4
lr_restart_cycles = 3
[training]
resolution = [640, 512]
noise_offset = 0.0
[others]
max_token_length = 225
"""
    cfg = import_kohya(tomllib.loads(text))
    assert cfg.model.base_model == "./models/model.ckpt" and cfg.caption.shuffle_caption is True
    assert cfg.network.network_dim == 64 and cfg.network.conv_dim == 4
    assert cfg.network.lycoris_algo == "loha" and cfg.network.network_dropout == 0.1
    assert cfg.optimizer.lr_scheduler_num_cycles == 3 and cfg.dataset.resolution == "640,512"
    assert cfg.caption.max_token_length == 225
    assert cfg.save.save_every_n_epochs == 0  # absent in sd-scripts: no per-epoch saves


def test_family_from_model_train_type_or_flux_keys():
    assert import_kohya({"model_train_type": "sdxl-lora"}).model.family == "sdxl"
    flux = import_kohya({"ae": "/m/ae.safetensors", "network_args": ["train_t5xxl=True"],
                         "optimizer_type": "prodigyplus.ProdigyPlusScheduleFree"})
    assert flux.model.family == "flux" and flux.flux.train_t5xxl is True
    assert flux.optimizer.optimizer_type == "ProdigyPlusScheduleFree"
    assert import_kohya({"vae": "x"}, family="sdxl").model.family == "sdxl"
    for name in ("AdamWScheduleFree", "SGDScheduleFree", "RAdamScheduleFree"):  # sd-scripts lowercases the name
        assert import_kohya({"optimizer_type": name.lower()}).optimizer.optimizer_type == name
    with pytest.raises(ConfigError) as exc:
        import_kohya({"model_train_type": "sd4-lora"})
    assert exc.value.findings[0].field == "model_train_type"


def test_unknown_kohya_key_is_named_with_a_suggestion():
    with pytest.raises(ConfigError) as exc:
        import_kohya({"pretrained_model_name_or_pth": "x", "network_dim": 8, "gui_theme": "dark"})
    fields = {f.field: f for f in exc.value.findings}
    assert set(fields) == {"pretrained_model_name_or_pth", "gui_theme"}
    assert "pretrained_model_name_or_path" in fields["pretrained_model_name_or_pth"].en


def test_bad_kohya_value_names_the_danlu_field():
    with pytest.raises(ConfigError) as exc:
        import_kohya({"optimizer_type": "Adam9000"})
    assert exc.value.findings[0].field == "optimizer.optimizer_type"


def test_prompt_file_is_read_into_the_text(tmp_path):
    (tmp_path / "prompts.txt").write_bytes("1girl, 红色 --w 512\n".encode("gbk"))
    (tmp_path / "run.toml").write_text('sample_prompts = "prompts.txt"\nnetwork_dim = 8\n', encoding="utf-8")
    assert load_config(tmp_path / "run.toml").sampling.sample_prompts == "1girl, 红色 --w 512\n"


# train_network.py's argument names (sd-scripts), for the export check.
SD_SCRIPTS_ARGS = set("""
caption_prefix huber_schedule huber_scale alpha_mask save_last_n_epochs_state save_last_n_steps_state
save_state_on_train_end dim_from_weights enable_wildcard sample_at_first no_metadata
scale_v_pred_loss_like_noise_pred v_pred_like_loss fp8_base_unet ddp_timeout ddp_gradient_as_bucket_view
ddp_static_graph text_encoder_batch_size log_config save_state_to_huggingface conditioning_data_dir masked_loss
pretrained_model_name_or_path vae v2 v_parameterization train_data_dir reg_data_dir prior_loss_weight resolution
enable_bucket min_bucket_reso max_bucket_reso bucket_reso_steps bucket_no_upscale output_name output_dir
save_model_as save_precision save_every_n_epochs save_every_n_steps save_last_n_epochs save_last_n_steps
save_state resume max_train_epochs max_train_steps train_batch_size gradient_checkpointing
gradient_accumulation_steps network_train_unet_only network_train_text_encoder_only max_grad_norm seed
learning_rate unet_lr text_encoder_lr lr_scheduler lr_scheduler_num_cycles lr_scheduler_power lr_warmup_steps
loss_type huber_c optimizer_type optimizer_args min_snr_gamma network_module network_weights network_dim
network_alpha network_dropout network_args scale_weight_norms base_weights base_weights_multiplier
sample_prompts sample_sampler sample_every_n_epochs sample_every_n_steps log_with log_prefix log_tracker_name
logging_dir caption_extension shuffle_caption weighted_captions keep_tokens keep_tokens_separator
max_token_length caption_dropout_rate caption_dropout_every_n_epochs caption_tag_dropout_rate noise_offset
multires_noise_iterations multires_noise_discount color_aug flip_aug random_crop clip_skip mixed_precision
full_fp16 full_bf16 fp8_base no_half_vae cache_latents cache_latents_to_disk cache_text_encoder_outputs
cache_text_encoder_outputs_to_disk max_data_loader_n_workers persistent_data_loader_workers vae_batch_size sdpa
xformers lowram ae clip_l t5xxl timestep_sampling sigmoid_scale model_prediction_type discrete_flow_shift
guidance_scale t5xxl_max_token_length apply_t5_attn_mask metadata_title metadata_author metadata_description
metadata_license metadata_tags huggingface_repo_id huggingface_repo_type huggingface_path_in_repo
huggingface_repo_visibility validation_split validation_seed validate_every_n_steps validate_every_n_epochs
zero_terminal_snr torch_compile adaptive_noise_scale noise_offset_random_strength ip_noise_gamma
ip_noise_gamma_random_strength training_comment debiased_estimation_loss
min_timestep max_timestep lr_scheduler_type lr_scheduler_args
lr_decay_steps lr_scheduler_min_lr_ratio lr_scheduler_timescale
caption_suffix caption_separator secondary_separator token_warmup_min token_warmup_step
resize_interpolation face_crop_aug_range
initial_step initial_epoch skip_until_initial_step save_n_epoch_ratio
""".split())


def _sd_trainer_cfg(tmp_path) -> TrainConfig:
    (tmp_path / "in.toml").write_text(SD_TRAINER, encoding="utf-8")
    return load_config(tmp_path / "in.toml")


def test_export_uses_sd_scripts_names_and_values(tmp_path):
    out = export_kohya(_sd_trainer_cfg(tmp_path), prompts_file="/runs/x/prompts.txt")
    assert set(out) <= SD_SCRIPTS_ARGS, set(out) - SD_SCRIPTS_ARGS
    assert out["pretrained_model_name_or_path"] == "./sd-models/anything-v5.safetensors"
    assert out["network_args"] == ["conv_dim=8", "conv_alpha=4.0"]
    assert out["optimizer_args"] == ["weight_decay=0.01"] and out["sample_prompts"] == "/runs/x/prompts.txt"
    assert out["max_token_length"] == 225 and out["clip_skip"] == 2
    tomllib.loads(tomli_w.dumps(out))  # writable as TOML (no None)


def test_export_leaves_out_zeros_sd_scripts_reads_as_values():
    cfg = config_from_dict({"save": {"save_every_n_epochs": 0}, "sampling": {"sample_every_n_epochs": 0}})
    out = export_kohya(cfg)
    # sd-scripts treats these as set when present (save_every_n_epochs = 0 divides by zero there)
    for key in ("save_every_n_epochs", "save_every_n_steps", "save_last_n_epochs", "sample_every_n_epochs",
                "noise_offset", "min_snr_gamma", "network_dropout", "max_train_steps", "multires_noise_iterations",
                "caption_dropout_every_n_epochs", "max_token_length", "vae", "network_weights", "resume"):
        assert key not in out, key
    # ... but where 0 means something else than sd-scripts' default, the zero is written
    cfg = config_from_dict({"dataset": {"prior_loss_weight": 0.0}, "optimizer": {"text_encoder_lr": 0.0},
                            "training": {"max_grad_norm": 0.0, "seed": 0}})
    out = export_kohya(cfg)
    assert out["prior_loss_weight"] == 0 and out["text_encoder_lr"] == 0
    assert out["max_grad_norm"] == 0 and out["seed"] == 0 and out["max_data_loader_n_workers"] == 0
    assert "unet_lr" not in out  # None: not set


def test_trigger_word_survives_the_sd_scripts_export_as_its_caption_prefix():
    cfg = config_from_dict({"caption": {"trigger_word": "zk"}})
    out = export_kohya(cfg)
    assert out["caption_prefix"] == "zk, "  # sd-scripts glues prefix and caption together: the separator is ours
    assert import_kohya(out).caption.trigger_word == "zk"
    assert "caption_prefix" not in export_kohya(TrainConfig())


def test_export_writes_optimizer_import_paths_sd_scripts_can_load():
    for ours, theirs in (("ProdigyPlusScheduleFree", "prodigyplus.ProdigyPlusScheduleFree"),
                         ("CAME", "pytorch_optimizer.CAME"), ("AdamW8bit", "AdamW8bit")):
        cfg = config_from_dict({"optimizer": {"optimizer_type": ours}})
        assert export_kohya(cfg)["optimizer_type"] == theirs
        assert import_kohya({"optimizer_type": theirs}).optimizer.optimizer_type == ours


def test_export_leaves_out_options_of_other_families():
    flux = config_from_dict({"model": {"family": "flux", "ae": "/m/ae.sft", "t5xxl": "/m/t5.sft"}})
    out = export_kohya(flux)
    assert out["ae"] == "/m/ae.sft" and "clip_skip" not in out and "vae" not in out
    assert "ae" not in export_kohya(TrainConfig())


def _comparable(cfg: TrainConfig) -> dict:
    """The values sd-scripts has a place for (its own key, or a network_args item)."""
    arg_fields = set(NETWORK_ARG_FIELDS.values())
    return {p.path: getattr(getattr(cfg, p.group), p.name) for p in all_params()
            if (p.kohya_key or p.name in arg_fields) and cfg.model.family in p.families}


@pytest.mark.parametrize("family", ["sd15", "flux"])
def test_export_then_import_gives_the_same_config(family, tmp_path):
    cfg = _sd_trainer_cfg(tmp_path)
    if family == "flux":
        cfg = config_from_dict({"model": {"family": "flux", "ae": "/m/ae.sft", "clip_l": "/m/clip_l.sft"},
                                "network": {"network_dim": 4, "network_alpha": 0.0},
                                "optimizer": {"optimizer_type": "CAME", "unet_lr": 5e-5}})
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(cfg.sampling.sample_prompts, encoding="utf-8")
    out = tmp_path / "kohya.toml"
    out.write_text(tomli_w.dumps(export_kohya(cfg, prompts_file=str(prompts))), encoding="utf-8")
    back = load_config(out, family=family)
    assert _comparable(back) == _comparable(cfg)
    assert back.model.family == family


def test_prompts_file_for_sd_scripts_carries_danlu_sample_defaults():
    cfg = config_from_dict({"sampling": {
        "sample_prompts": "# previews\n1girl, aki --w 768\n\nlandscape --n people --d 5\n",
        "sample_negative_prompt": "lowres", "sample_width": 1024, "sample_height": 640, "sample_steps": 28}})
    lines = prompts_for_sd_scripts(cfg).splitlines()
    assert lines[0] == "# previews" and lines[2] == ""
    assert lines[1] == "1girl, aki --w 768 --n lowres --h 640 --s 28 --l 7.0 --d 42"
    assert lines[3] == "landscape --n people --d 5 --w 1024 --h 640 --s 28 --l 7.0"


def test_cli_export_writes_toml_and_prompts(tmp_path):
    from trainer.__main__ import main

    src = tmp_path / "run.toml"
    src.write_text('schema_version = 1\n[sampling]\nsample_prompts = "1girl"\n[network]\nnetwork_dim = 8\n',
                   encoding="utf-8")
    out = tmp_path / "kohya.toml"
    assert main(["export", "--config", str(src), str(out), "--set", "seed=7"]) == 0
    data = tomllib.loads(out.read_text(encoding="utf-8"))
    assert data["network_dim"] == 8 and data["seed"] == 7
    assert "--w 512" in open(data["sample_prompts"], encoding="utf-8").read()


def test_cli_export_over_existing_files_keeps_them_as_backups(tmp_path, capsys):
    """Exporting onto the config it reads (or onto last week's export) must not lose the file the user wrote."""
    from trainer.__main__ import main

    src = tmp_path / "run.toml"
    mine = '# my notes\nnetwork_dim = 8\nsample_prompts = "1girl"\n'
    src.write_text(mine, encoding="utf-8")
    old_prompts = tmp_path / "run.prompts.txt"
    old_prompts.write_text("my own prompt list", encoding="utf-8")
    assert main(["export", "--config", str(src), str(src)]) == 0
    assert tomllib.loads(src.read_text(encoding="utf-8"))["network_dim"] == 8
    kept = {p.name.split(".")[1]: p for p in tmp_path.glob("*.bak")}
    assert kept["toml"].read_text(encoding="utf-8") == mine
    assert kept["prompts"].read_text(encoding="utf-8") == "my own prompt list"
    said = capsys.readouterr().out
    assert all(p.name in said for p in kept.values()), said


def test_an_empty_optional_number_is_not_set():
    """SD-Trainer saves cleared fields as "": that means "not set", never 0."""
    cfg = import_kohya({"unet_lr": "", "text_encoder_lr": "", "learning_rate": 2e-4})
    assert cfg.optimizer.unet_lr is None and cfg.optimizer.text_encoder_lr is None
    out = export_kohya(cfg)
    assert "unet_lr" not in out and "text_encoder_lr" not in out and out["learning_rate"] == 2e-4


@pytest.mark.parametrize(("key", "only"), [("text_encoder_lr", "network_train_unet_only"),
                                           ("unet_lr", "network_train_text_encoder_only")])
def test_a_zero_part_learning_rate_means_that_part_is_not_trained(key, only):
    """sd-scripts skips a parameter group whose learning rate is 0 ("NO LR skipping!"): same meaning here."""
    cfg = import_kohya({key: 0, "learning_rate": 1e-4})
    assert getattr(cfg.optimizer, key) is None and getattr(cfg.training, only) is True
    assert not errors_of(check(cfg, for_training=False))


def test_a_flux_sd_scripts_config_without_flux_options_gets_sd_scripts_flux_defaults():
    filled: list = []
    cfg = import_kohya({"pretrained_model_name_or_path": "/m/flux1-dev.safetensors", "ae": "/m/ae.sft",
                        "clip_l": "/m/clip_l.sft", "t5xxl": "/m/t5.sft",
                        "output_name": "fx"}, family="flux", filled=filled)
    f = cfg.flux
    assert (f.timestep_sampling, f.model_prediction_type, f.guidance_scale, f.discrete_flow_shift) == (
        "sigma", "sigma_scaled", 3.5, 3.0)
    assert f.t5xxl_max_token_length == 512 and f.apply_t5_attn_mask is False
    assert "flux.model_prediction_type" in {x.path for x in filled}
    assert (f.weighting_scheme, f.logit_mean, f.logit_std, f.mode_scale) == ("none", 0.0, 1.0, 1.29)


def test_sd_scripts_uniform_weighting_scheme_is_none_and_the_scheme_round_trips():
    """sd-scripts: "uniform and none are the same behavior"; its other schemes keep their names both ways."""
    base = {"pretrained_model_name_or_path": "/m/flux1-dev.safetensors", "ae": "/m/ae.sft", "clip_l": "/m/c.sft",
            "t5xxl": "/m/t5.sft", "timestep_sampling": "sigma"}
    assert import_kohya({**base, "weighting_scheme": "uniform"}, family="flux").flux.weighting_scheme == "none"
    cfg = import_kohya({**base, "weighting_scheme": "logit_normal", "logit_mean": 0.5, "logit_std": 1.5},
                       family="flux")
    assert (cfg.flux.weighting_scheme, cfg.flux.logit_mean, cfg.flux.logit_std) == ("logit_normal", 0.5, 1.5)
    out = export_kohya(cfg)
    assert (out["weighting_scheme"], out["logit_mean"], out["logit_std"]) == ("logit_normal", 0.5, 1.5)


def test_sd_scripts_flux_lora_module_imports_as_flux_lora_and_exports_back():
    """sd-scripts trains Flux LoRAs with networks.lora_flux; Danlu's networks.lora is that LoRA for family flux."""
    cfg = import_kohya({"pretrained_model_name_or_path": "/m/flux1-dev.safetensors",
                        "network_module": "networks.lora_flux", "network_dim": 16})
    assert (cfg.model.family, cfg.network.network_module) == ("flux", "networks.lora")
    assert not errors_of(check(cfg, for_training=False))
    assert export_kohya(cfg)["network_module"] == "networks.lora_flux"
    sd15 = import_kohya({"network_module": "networks.lora"})
    assert export_kohya(sd15)["network_module"] == "networks.lora"


@pytest.mark.parametrize("given", [{"model_train_type": "sdxl-lora"}, {}])
def test_flux_lora_module_in_a_config_of_another_family_is_named(given):
    with pytest.raises(ConfigError) as exc:
        import_kohya({**given, "network_module": "networks.lora_flux"}, family=None if given else "sd15")
    assert [f.field for f in exc.value.findings] == ["network_module"]
    message = exc.value.findings[0].en
    assert "flux LoRA" in message and ("sdxl" if given else "sd15") in message


def test_retired_options_xformers_lowram_v2_are_translated_or_refused_with_a_note(tmp_path):
    """xformers, lowram and v2 are not Danlu settings (trainer/config/retired.py says why): an imported file
    that sets them gets SDPA and a note, a note, or an error naming v2."""
    notes: list = []
    cfg = import_kohya({"xformers": True, "lowram": True, "v2": False}, warnings=notes)
    assert cfg.speed.sdpa is True
    assert [n.field for n in notes] == ["xformers", "lowram"] and all(n.level == "warning" for n in notes)
    assert "sdpa" in notes[0].en and "xformers" not in {p.name for p in all_params()}
    quiet: list = []
    assert import_kohya({"xformers": False, "lowram": False}, warnings=quiet).speed.sdpa is False and not quiet
    with pytest.raises(ConfigError) as exc:
        import_kohya({"v2": True, "v_parameterization": True})
    assert [f.field for f in exc.value.findings] == ["v2"] and "2.x" in exc.value.findings[0].en

    # A Danlu file of schema version 1 (which listed them as "not supported yet") still loads.
    old = tmp_path / "v1.toml"
    old.write_text("schema_version = 1\n[model]\nv2 = false\n[speed]\nxformers = false\nlowram = false\n"
                   "sdpa = false\n", encoding="utf-8")
    assert load_config(old).speed.sdpa is False
    old.write_text("schema_version = 1\n[model]\nv2 = true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(old)
    assert [f.field for f in exc.value.findings] == ["model.v2"]


def test_sd_scripts_wandb_keys_import_with_a_note_and_the_api_key_is_never_kept(tmp_path):
    """A typical sd-scripts wandb config (wandb_run_name, wandb_api_key, log_tracker_config) imports: each key
    Danlu does not read gets a note saying what happens instead, and the API key is in no setting."""
    from trainer.config import save_config

    notes: list = []
    cfg = import_kohya({"log_with": "wandb", "wandb_run_name": "my run", "wandb_api_key": "sk-secret",
                        "log_tracker_config": "tracker.toml", "log_tracker_name": "proj"}, warnings=notes)
    assert cfg.logging.log_with == "wandb" and cfg.logging.log_tracker_name == "proj"
    assert {n.field for n in notes} == {"wandb_run_name", "wandb_api_key", "log_tracker_config"}
    assert all(n.level == "warning" and n.zh for n in notes)
    assert "WANDB_API_KEY" in next(n.en for n in notes if n.field == "wandb_api_key")
    assert "sk-secret" not in " ".join(n.en + n.zh for n in notes)
    assert "sk-secret" not in save_config(cfg, tmp_path / "c.toml").read_text()
