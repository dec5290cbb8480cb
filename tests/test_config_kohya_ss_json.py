"""Import of the JSON configs the kohya_ss GUI (bmaltais) saves from its LoRA tab, by `--config` and Expert's
import. The GUI passes most keys to sd-scripts under the same name but drops every "", 0 and false first (so
sd-scripts' defaults apply), and turns its own keys (LoRA_type, epoch, max_resolution, optimizer, lr_warmup, ...)
into sd-scripts' options: the import reads a file as the GUI would have trained it."""

from __future__ import annotations

import json

import pytest

from trainer.config import ConfigError, check, load_config
from trainer.networks.metadata import sd_scripts_args

# The shape of a LoRA tab save (keys sorted, numbers sometimes saved as strings, "" for unset); values our own.
LOCON = {
    "LoRA_type": "Kohya LoCon", "LyCORIS_preset": "full", "adaptive_noise_scale": 0, "additional_parameters": "",
    "block_alphas": "", "block_dims": "", "bucket_no_upscale": True, "bucket_reso_steps": 64, "bypass_mode": False,
    "cache_latents": True, "cache_latents_to_disk": False, "caption_dropout_every_n_epochs": 0,
    "caption_dropout_rate": 0.05, "caption_extension": ".txt", "clip_skip": "2", "color_aug": False, "constrain": 0,
    "conv_alpha": 4, "conv_dim": 8, "dataset_config": "", "dim_from_weights": False, "dora_wd": False,
    "down_lr_weight": "", "enable_bucket": True, "epoch": 6, "factor": -1, "flip_aug": False, "fp8_base": False,
    "full_bf16": False, "full_fp16": False, "gpu_ids": "", "gradient_accumulation_steps": 2,
    "gradient_checkpointing": True, "huber_c": 0.1, "huber_schedule": "snr", "keep_tokens": "1",
    "learning_rate": "0.0002", "logging_dir": "./logs", "lora_network_weights": "", "loss_type": "l2",
    "lr_scheduler": "cosine", "lr_scheduler_args": "", "lr_scheduler_num_cycles": "", "lr_scheduler_power": "",
    "lr_warmup": 0, "main_process_port": 0, "max_bucket_reso": 1024, "max_data_loader_n_workers": "0",
    "max_grad_norm": 1, "max_resolution": "768,768", "max_timestep": 1000, "max_token_length": "75",
    "max_train_epochs": "", "max_train_steps": "", "mem_eff_attn": False, "min_bucket_reso": 256,
    "min_snr_gamma": 5, "min_timestep": 0, "mixed_precision": "bf16", "model_list": "custom",
    "module_dropout": 0.1, "multi_gpu": False, "multires_noise_discount": 0.3, "multires_noise_iterations": 6,
    "network_alpha": 16, "network_dim": 32, "network_dropout": 0, "noise_offset": 0.05,
    "noise_offset_type": "Original", "num_cpu_threads_per_process": 2, "num_machines": 1, "num_processes": 1,
    "optimizer": "AdamW8bit", "optimizer_args": "\"weight_decay=0.05\" betas=0.9,0.99", "output_dir": "./out",
    "output_name": "mychar", "persistent_data_loader_workers": False, "pretrained_model_name_or_path": "/models/m.safetensors",
    "prior_loss_weight": 1, "random_crop": False, "rank_dropout": 0, "reg_data_dir": "", "resume": "",
    "sample_every_n_epochs": 2, "sample_every_n_steps": 0, "sample_prompts": "mychar, smiling --w 512 --h 768",
    "sample_sampler": "euler_a", "save_as_bool": False, "save_every_n_epochs": 2, "save_every_n_steps": 0,
    "save_model_as": "safetensors", "save_precision": "fp16", "save_state": False, "scale_weight_norms": 0,
    "sdxl": False, "sdxl_cache_text_encoder_outputs": False, "sdxl_no_half_vae": False, "seed": "1234",
    "shuffle_caption": True, "stop_text_encoder_training": 0, "text_encoder_lr": 5e-05,
    "train_batch_size": 2, "train_data_dir": "./img", "train_norm": False, "train_on_input": False,
    "training_comment": "", "unet_lr": "0.0002", "unit": 1, "up_lr_weight": "", "use_cp": False,
    "use_scalar": False, "use_tucker": False, "use_wandb": False, "v2": False, "v_parameterization": False,
    "vae": "", "vae_batch_size": 0, "wandb_api_key": "", "wandb_run_name": "", "weighted_captions": False,
    "xformers": "xformers",
}


# What a newer GUI adds to every save, whatever the model (fields of the Flux section, Hub upload, accelerate),
# here at the values a fresh GUI shows.
NEWER = {
    "ae": "", "apply_t5_attn_mask": True, "async_upload": False, "clip_l": "", "discrete_flow_shift": 3,
    "dynamo_backend": "no", "dynamo_mode": "default", "dynamo_use_dynamic": False, "dynamo_use_fullgraph": False,
    "flux1_cache_text_encoder_outputs": True, "flux1_cache_text_encoder_outputs_to_disk": True,
    "flux1_checkbox": False, "guidance_scale": 1, "highvram": False, "huggingface_repo_id": "",
    "huggingface_token": "", "ip_noise_gamma": 0, "log_config": False, "log_tracker_config": "",
    "log_tracker_name": "", "log_with": "", "loraplus_lr_ratio": 0, "loraplus_text_encoder_lr_ratio": 0,
    "loraplus_unet_lr_ratio": 0, "lowvram": False, "lr_scheduler_type": "", "masked_loss": False,
    "mem_eff_save": False, "metadata_author": "", "metadata_title": "", "model_prediction_type": "raw",
    "network_weights": "", "resume_from_huggingface": "", "save_last_n_steps_state": 0,
    "save_state_on_train_end": False, "save_state_to_huggingface": False, "split_mode": False, "t5xxl": "",
    "t5xxl_max_token_length": 512, "timestep_sampling": "sigmoid", "train_blocks": "all", "train_on_input": True,
    "sdxl_cache_text_encoder_outputs": True, "sdxl_no_half_vae": True, "sd3_checkbox": False,
    "sd3_clip_l_dropout_rate": 0, "weighting_scheme": "logit_normal", "logit_mean": 0, "logit_std": 1.0,
}


def test_a_newer_save_trains_its_own_model_not_the_flux_or_sdxl_fields_it_also_holds(tmp_path):
    cfg, _ = load(tmp_path, {**LOCON, **NEWER})
    assert cfg.model.family == "sd15" and not cfg.speed.cache_text_encoder_outputs and not cfg.speed.no_half_vae
    assert "train_on_input=True" not in cfg.network.network_args  # an iA3 field: not sent for LoCon
    flux = {**LOCON, **NEWER, "LoRA_type": "Flux1", "flux1_checkbox": True, "ae": "/m/ae.safetensors",
            "clip_l": "/m/clip_l.safetensors", "t5xxl": "/m/t5xxl.safetensors", "guidance_scale": 3.5}
    cfg, _ = load(tmp_path, flux)
    assert cfg.model.family == "flux" and cfg.model.ae == "/m/ae.safetensors" and cfg.flux.guidance_scale == 3.5
    assert cfg.speed.cache_text_encoder_outputs and not cfg.speed.no_half_vae
    cfg, _ = load(tmp_path, {**flux, "LoRA_type": "Standard", "sdxl": True})  # both ticked: the GUI trains SDXL
    assert cfg.model.family == "sdxl" and cfg.speed.no_half_vae


def load(tmp_path, data: dict, name: str = "lora.json"):
    (tmp_path / name).write_text(json.dumps(data, indent=2), encoding="utf-8")
    warnings: list = []
    return load_config(tmp_path / name, warnings=warnings), warnings


def test_a_kohya_locon_save_imports_as_the_gui_would_train_it(tmp_path):
    cfg, _ = load(tmp_path, LOCON)
    n, o, d = cfg.network, cfg.optimizer, cfg.dataset
    assert (n.network_module, n.network_dim, n.network_alpha, n.conv_dim, n.conv_alpha) == ("networks.lora", 32,
                                                                                             16, 8, 4)
    assert n.network_args == ["module_dropout=0.1"]  # rank_dropout 0 is dropped, as the GUI drops it
    assert cfg.model.family == "sd15" and cfg.model.base_model == "/models/m.safetensors"
    assert d.resolution == "768,768" and d.train_data_dir.endswith("img")
    assert cfg.training.max_train_epochs == 6 and cfg.training.gradient_accumulation_steps == 2
    assert (o.optimizer_type, o.learning_rate, o.unet_lr, o.text_encoder_lr) == ("AdamW8bit", 2e-4, 2e-4, 5e-5)
    assert o.optimizer_args == ["weight_decay=0.05", "betas=0.9,0.99"]
    assert o.lr_scheduler == "cosine" and o.min_snr_gamma == 5
    # noise_offset_type "Original": the multires settings are not sent
    assert cfg.noise.noise_offset == 0.05 and cfg.noise.multires_noise_iterations in (0, None)
    assert cfg.caption.keep_tokens == 1 and cfg.other.clip_skip == 2 and cfg.training.seed == 1234
    assert cfg.speed.sdpa  # xformers: Danlu's attention
    assert cfg.sampling.sample_prompts == "mychar, smiling --w 512 --h 768" and cfg.sampling.sample_every_n_epochs == 2


@pytest.mark.parametrize("lora_type, module, args", [
    ("Standard", "networks.lora", ["module_dropout=0.1"]),
    ("LyCORIS/LoKr", "lycoris.kohya", ["module_dropout=0.1", "factor=8", "preset=attn-mlp"]),
    ("LyCORIS/LoHa", "lycoris.kohya", ["module_dropout=0.1", "preset=attn-mlp"]),
    ("Kohya DyLoRA", "networks.dylora", ["module_dropout=0.1"]),  # unit: dylora_unit
    ("LyCORIS/DyLoRA", "lycoris.kohya", ["module_dropout=0.1", "block_size=4", "preset=attn-mlp"]),
])
def test_lora_type_chooses_the_network(tmp_path, lora_type, module, args):
    cfg, _ = load(tmp_path, {**LOCON, "LoRA_type": lora_type, "factor": 8, "LyCORIS_preset": "attn-mlp", "unit": 4})
    n = cfg.network
    assert n.network_module == module and sorted(n.network_args) == sorted(args)
    assert n.lycoris_algo == {"LyCORIS/LoKr": "lokr", "LyCORIS/LoHa": "loha", "LyCORIS/DyLoRA": "dylora"}.get(
        lora_type, n.lycoris_algo)
    assert n.conv_dim == (0 if lora_type == "Standard" else 8)  # Standard sends no conv_dim
    if lora_type == "Kohya DyLoRA":
        assert n.dylora_unit == 4


def test_a_zero_text_encoder_rate_trains_the_unet_only(tmp_path):
    cfg, _ = load(tmp_path, {**LOCON, "text_encoder_lr": 0})
    assert cfg.training.network_train_unet_only


def test_sdxl_and_additional_parameters(tmp_path):
    cfg, _ = load(tmp_path, {**LOCON, "sdxl": True, "sdxl_no_half_vae": True, "max_resolution": "1024,1024",
                             "additional_parameters": "--max_grad_norm=0 --network_train_unet_only --max_token_length 225"})
    assert cfg.model.family == "sdxl" and cfg.speed.no_half_vae and cfg.dataset.resolution == "1024,1024"
    assert cfg.training.max_grad_norm == 0 and cfg.training.network_train_unet_only
    assert cfg.caption.max_token_length == 225


def test_additional_parameters_take_several_values_as_sd_scripts_lists_do(tmp_path):
    flags = ' --optimizer_args "weight_decay=0.01" "d_coef=1" --network_train_unet_only --seed 7'
    cfg, _ = load(tmp_path, {**LOCON, "optimizer_args": "", "additional_parameters": flags})
    assert cfg.optimizer.optimizer_args == ["weight_decay=0.01", "d_coef=1"]
    assert cfg.training.network_train_unet_only and cfg.training.seed == 7
    with pytest.raises(ConfigError, match="--seed"):  # two values for a one-value flag
        load(tmp_path, {**LOCON, "additional_parameters": "--seed 7 8"})
    flags = '--lr_scheduler_type "CosineAnnealingLR" --lr_scheduler_args "T_max=1000" "eta_min=0e-0"'  # as saved
    cfg, _ = load(tmp_path, {**LOCON, "additional_parameters": flags})
    assert cfg.optimizer.lr_scheduler_type == "CosineAnnealingLR"
    assert cfg.optimizer.lr_scheduler_args == ["T_max=1000", "eta_min=0e-0"]


def test_comment_and_memory_efficient_attention(tmp_path):
    cfg, notes = load(tmp_path, {**LOCON, "training_comment": "trigger: mychar", "mem_eff_attn": True,
                                 "xformers": "none", "adaptive_noise_scale": 0.005, "ip_noise_gamma": 0.1,
                                 "ip_noise_gamma_random_strength": True})
    assert cfg.noise.ip_noise_gamma == 0.1 and cfg.noise.ip_noise_gamma_random_strength
    assert cfg.noise.adaptive_noise_scale == 0.005 and cfg.noise.noise_offset == 0.05
    assert sd_scripts_args(cfg)["training_comment"] == "trigger: mychar"  # the header's ss_training_comment
    assert cfg.speed.sdpa and any(n.field == "mem_eff_attn" for n in notes)
    cfg, _ = load(tmp_path, {**LOCON, "debiased_estimation_loss": True, "min_timestep": 100, "max_timestep": 900})
    assert cfg.optimizer.debiased_estimation_loss and (cfg.noise.min_timestep, cfg.noise.max_timestep) == (100, 900)


def test_steps_and_warmup(tmp_path):
    cfg, _ = load(tmp_path, {**LOCON, "max_train_steps": "900", "lr_warmup": 10})
    # the GUI sends its percent as a share of the steps, which sd-scripts reads below 1
    assert cfg.training.max_train_steps == 900 and cfg.optimizer.lr_warmup_ratio == 0.1
    cfg, _ = load(tmp_path, {**LOCON, "lr_warmup": 10, "lr_warmup_steps": 40})  # the newer absolute override
    assert cfg.optimizer.lr_warmup_steps == 40 and cfg.optimizer.lr_warmup_ratio == 0


def test_a_bucket_step_of_1_is_read_as_danlus_finest_with_a_note(tmp_path):
    cfg, notes = load(tmp_path, {**LOCON, "bucket_reso_steps": 1})
    assert cfg.dataset.bucket_reso_steps == 64 and any("read as 64" in n.en for n in notes)
    assert not [f for f in check(cfg) if f.field == "dataset.bucket_reso_steps"]  # a value the run takes


def test_a_partial_preset_is_read_too(tmp_path):
    preset = {"LoRA_type": "LyCORIS/iA3", "epoch": 30, "learning_rate": 1.0, "optimizer": "Prodigy",
              "optimizer_args": "d_coef=1.0 weight_decay=0.01", "network_dim": 64, "network_alpha": 64,
              "train_on_input": True, "seed": "31337", "text_encoder_lr": 1.0, "unet_lr": 1.0}
    cfg, _ = load(tmp_path, preset)
    assert cfg.network.network_module == "lycoris.kohya" and cfg.network.lycoris_algo == "ia3"
    assert "train_on_input=True" in cfg.network.network_args
    assert cfg.optimizer.optimizer_type == "Prodigy" and cfg.training.max_train_epochs == 30
    # a preset without the rates leaves them as they are: the text encoder trains
    cfg, _ = load(tmp_path, {k: v for k, v in preset.items() if not k.endswith("_lr")})
    assert not cfg.training.network_train_unet_only and not cfg.training.network_train_text_encoder_only


@pytest.mark.parametrize("data, named", [
    ({**LOCON, "LoRA_type": "LoRA-FA"}, "LoRA-FA"),
    ({**LOCON, "sd3_checkbox": True}, "sd3_checkbox"),
    ({k: v for k, v in LOCON.items() if k != "LoRA_type"}, "LoRA tab"),  # a Dreambooth or finetune save
    ({**LOCON, "resume_from_huggingface": True}, "resume_from_huggingface"),  # set, and not a Danlu setting
])
def test_what_danlu_cannot_train_as_saved_is_named(tmp_path, data, named):
    with pytest.raises(ConfigError) as got:
        load(tmp_path, data)
    assert named in str(got.value), str(got.value)


def test_a_broken_json_file_says_where(tmp_path):
    (tmp_path / "bad.json").write_text('{"LoRA_type": "Standard",\n "epoch": }', encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        load_config(tmp_path / "bad.json")


def test_expert_imports_a_kohya_ss_json_into_the_form(tmp_path):
    from tests.ui_press import by_elem_id, press, text_of
    from ui.app import build_app

    (tmp_path / "mychar.json").write_text(json.dumps({**LOCON, "LoRA_type": "LyCORIS/LoKr", "factor": 4}),
                                          encoding="utf-8")
    demo = build_app(tmp_path / "ws")
    module = by_elem_id(demo, "field-network-network_module")
    event = next(f for f in demo.fns.values() if (by_elem_id(demo, "expert-import")._id, "click") in
                 [(t[0], t[1]) for t in f.targets])
    assert module in event.outputs
    shown = text_of(press(demo, "expert-import", values={"expert-import-path": str(tmp_path / "mychar.json")}))
    assert "Imported" in shown and "lycoris.kohya" in shown and "factor=4" in shown, shown[:3000]
