"""Rules for Flux runs: options of the DDPM families that flow matching has no meaning for, and what the Flux
engine does not do yet. Registered with the other rules (trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, error, warning
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig

# What each flux.weighting_scheme changes in sd-scripts (and trainer.engine.flow): which timesteps the sigma
# sampling mode draws, or the loss weight of the sigma_scaled prediction type.
DENSITY_SCHEMES = {"logit_normal": ("logit_mean", "logit_std"), "mode": ("mode_scale",)}
LOSS_SCHEMES = ("sigma_sqrt", "cosmap")
# The LyCORIS algorithms trainer.networks.flux_lycoris.FLUX_ALGOS writes for Flux (named here so that checking a
# config does not import torch; a test keeps the two equal).
FLUX_LYCORIS_ALGOS = ("locon", "loha", "lokr", "glora", "diag-oft")
# the per-split algorithms Danlu trains by rebuilding the weight each step (trainer.networks.flux_sliced): lycoris'
# bypass forward of diag-OFT turns the bias too, which ComfyUI (weights only) would not
FLUX_REBUILT_ALGOS = ("diag-oft",)
# why the schema's other algorithms are refused on Flux (en, zh): a Flux file must apply in ComfyUI/Forge as trained,
# to a row slice of BFL's fused q/k/v where diffusers trains a split Linear
REFUSED_ALGOS = {
    "ia3": ("ComfyUI and Forge have no IA3 loader", "ComfyUI 与 Forge 无法加载 IA3"),
    "full": ("ComfyUI would not apply the bias diff (diff_b) of a q/k/v slice, and the file would hold the whole "
             "transformer", "ComfyUI 不会应用 q/k/v 切片的偏置差（diff_b），且文件将包含整个 transformer"),
    "dylora": ("lycoris' DyLoRA trains a random rank each step; not checked against ComfyUI on slices",
               "lycoris 的 DyLoRA 每步训练随机秩；尚未在切片上与 ComfyUI 核对"),
    "boft": ("lycoris' BOFT reads the base weight as stored, which fp8_base keeps in fp8, and cannot factor FLUX.1's "
             "18432/9216-wide modulation Linears below network_dim 32; its file does apply per slice in ComfyUI",
             "lycoris 的 BOFT 直接读取按存储精度保存的基础权重（fp8_base 下为 fp8），且 network_dim 小于 32 时无法分解 "
             "FLUX.1 宽 18432/9216 的调制层；其文件在 ComfyUI 中按切片应用是正确的"),
}


@rule
def _flux_only_flow_matching(cfg: TrainConfig) -> list[Finding]:
    if cfg.model.family != "flux":
        return []
    out = []
    if cfg.optimizer.min_snr_gamma > 0:
        out.append(error("optimizer.min_snr_gamma", "does not apply to Flux (flow matching has no DDPM "
                         "signal-to-noise ratio); set it to 0", "不适用于 Flux（流匹配没有 DDPM 信噪比）；请设为 0"))
    if cfg.network.network_module not in ("networks.lora", "lycoris.kohya", "networks.oft"):
        out.append(error("network.network_module", f"{cfg.network.network_module} is not supported for Flux yet; "
                         f"use networks.lora, networks.oft or lycoris.kohya ({', '.join(FLUX_LYCORIS_ALGOS)})",
                         f"Flux 暂不支持 {cfg.network.network_module}；请使用 networks.lora、networks.oft 或 lycoris.kohya"
                         f"（{'、'.join(FLUX_LYCORIS_ALGOS)}）"))
    if cfg.network.network_module == "lycoris.kohya":
        if cfg.network.lycoris_algo not in FLUX_LYCORIS_ALGOS:
            en, zh = REFUSED_ALGOS.get(cfg.network.lycoris_algo, ("", ""))
            out.append(error("network.lycoris_algo", f"{cfg.network.lycoris_algo} is not supported for Flux yet"
                             f"{' (' + en + ')' if en else ''}; use {', '.join(FLUX_LYCORIS_ALGOS)}",
                             f"Flux 暂不支持 {cfg.network.lycoris_algo}{'（' + zh + '）' if zh else ''}；请使用 "
                             f"{'、'.join(FLUX_LYCORIS_ALGOS)}"))
        if cfg.flux.train_t5xxl:
            out.append(error("flux.train_t5xxl", "lycoris.kohya on Flux does not train T5 yet; turn this off or use "
                             "networks.lora", "Flux 上的 lycoris.kohya 暂不训练 T5；请关闭此项，或使用 networks.lora"))
    return out


def _dora_wd(cfg: TrainConfig) -> bool:
    from trainer.networks.lycoris_args import flag, split_args  # torch-free

    try:
        return flag(split_args(cfg.network.network_args), "dora_wd")
    except ValueError:  # a malformed network_args is named by the network's own check
        return False


@rule
def _flux_dora_memory(cfg: TrainConfig) -> list[Finding]:
    """Flux DoRA rebuilds every adapted weight and keeps ~1.7x its size for the backward pass (measured at FLUX.1's
    width: 1.54 GiB for one double + one single block in bf16, against 9 MiB for LoKr/LoCon; ~38 GiB for the whole
    transformer); gradient checkpointing keeps one block's worth at a time."""
    if cfg.model.family != "flux" or cfg.training.gradient_checkpointing or not _dora_wd(cfg):
        return []
    return [warning("training.gradient_checkpointing", "DoRA (dora_wd=True) on Flux keeps a rebuilt copy of every "
                    "adapted weight for the backward pass (about 38 GiB for FLUX.1 in bf16); turn gradient "
                    "checkpointing on, which keeps one block's worth at a time",
                    "Flux 上的 DoRA（dora_wd=True）会为反向传播保留每个被适配权重的重建副本（FLUX.1 bf16 约 38 GiB）；"
                    "请开启梯度检查点，它一次只保留一个块的量")]


@rule
def _flux_rebuilt_memory(cfg: TrainConfig) -> list[Finding]:
    """diag-OFT on Flux rebuilds every adapted weight each step as DoRA does (its R W), and the backward pass keeps
    the difference to the base weight: a copy the size of the adapted Linears (not measured at FLUX.1's size)."""
    if (cfg.model.family != "flux" or cfg.training.gradient_checkpointing or cfg.network.network_module !=
            "lycoris.kohya" or cfg.network.lycoris_algo not in FLUX_REBUILT_ALGOS):
        return []
    algo = {"diag-oft": "diag-OFT"}.get(cfg.network.lycoris_algo, cfg.network.lycoris_algo)
    return [warning("training.gradient_checkpointing", f"{algo} on Flux rebuilds every adapted weight each step and "
                    "keeps a copy of it for the backward pass (as DoRA does: tens of GiB for FLUX.1); turn gradient "
                    "checkpointing on, which keeps one block's worth at a time",
                    f"Flux 上的 {algo} 每步重建每个被适配的权重，并为反向传播保留一份副本（与 DoRA 相同：FLUX.1 "
                    "需数十 GiB）；请开启梯度检查点，它一次只保留一个块的量")]


@rule
def _weighting_scheme_applies(cfg: TrainConfig) -> list[Finding]:
    """A weighting scheme, or a parameter of one, that this config would accept and then not use."""
    f, out = cfg.flux, []
    if cfg.model.family != "flux":
        return out
    if f.weighting_scheme in DENSITY_SCHEMES and f.timestep_sampling != "sigma":
        out.append(warning("flux.weighting_scheme", f"{f.weighting_scheme} only changes the timesteps drawn with "
                           f"timestep_sampling = sigma, not {f.timestep_sampling}; choose sigma or set it to none",
                           f"{f.weighting_scheme} 只在 timestep_sampling = sigma 时改变抽取的时间步，对 "
                           f"{f.timestep_sampling} 无效；请选择 sigma，或将其设为 none"))
    if f.weighting_scheme in LOSS_SCHEMES and f.model_prediction_type != "sigma_scaled":
        out.append(warning("flux.weighting_scheme", f"{f.weighting_scheme} only weights the loss with "
                           f"model_prediction_type = sigma_scaled, not {f.model_prediction_type} (as in sd-scripts); "
                           "choose sigma_scaled or set it to none",
                           f"{f.weighting_scheme} 只在 model_prediction_type = sigma_scaled 时给损失加权，对 "
                           f"{f.model_prediction_type} 无效（与 sd-scripts 相同）；请选择 sigma_scaled，或将其设为 none"))
    defaults = type(f).model_fields
    for scheme, names in DENSITY_SCHEMES.items():
        for name in names:
            if getattr(f, name) != defaults[name].default and f.weighting_scheme != scheme:
                out.append(warning(f"flux.{name}", f"is only used by the {scheme} weighting scheme, not "
                                   f"{f.weighting_scheme}; set weighting_scheme = {scheme} or leave this at "
                                   f"{defaults[name].default}",
                                   f"只对 {scheme} 加权方案生效，对 {f.weighting_scheme} 无效；请把 weighting_scheme "
                                   f"设为 {scheme}，或将此项保持为 {defaults[name].default}"))
    return out


@rule
def _train_t5xxl(cfg: TrainConfig) -> list[Finding]:
    """sd-scripts' rules: T5's LoRA is part of the text-encoder training, and its outputs change every step."""
    if cfg.model.family != "flux" or not cfg.flux.train_t5xxl:
        return []
    out = []
    if cfg.training.network_train_unet_only:
        out.append(error("flux.train_t5xxl", "needs the text encoders trained; turn off "
                         "training.network_train_unet_only or turn this off",
                         "需要训练文本编码器；请关闭 training.network_train_unet_only，或关闭此项"))
    if cfg.speed.cache_text_encoder_outputs or cfg.speed.cache_text_encoder_outputs_to_disk:
        out.append(error("flux.train_t5xxl", "T5 is trained, so its outputs cannot be cached; turn off "
                         "speed.cache_text_encoder_outputs (and _to_disk) or turn this off",
                         "T5 参与训练，其输出无法缓存；请关闭 speed.cache_text_encoder_outputs（及其磁盘版本），或关闭此项"))
    return out
