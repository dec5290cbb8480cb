"""sd-scripts flags an imported config may set that name another Danlu setting: masked_loss (the alpha mask, or a
folder of mask pictures), the flags from before optimizer_type, fp8_base_unet, the misspelt
caption_extention, torch_compile's dynamo_backend, the Hub upload's and Flux's model_type."""

from __future__ import annotations

from typing import Any

from trainer.config.errors import Finding, error, warning


def read_loss_and_optimizer_flags(flat: dict[str, Any], findings: list[Finding], notes: list[Finding]) -> None:
    """Take the flags out of `flat` (sd-scripts names), setting what they mean; each that cannot be read is an error
    in `findings`, each left out a note in `notes`."""
    _masked_loss(flat, findings, notes)
    _old_optimizer_flags(flat, findings)


def _masked_loss(flat: dict[str, Any], findings: list[Finding], notes: list[Finding]) -> None:
    """sd-scripts' masked_loss (taken out of `flat`) weighs the loss by the mask pictures of a conditioning_data_dir
    (Danlu's dataset.conditioning_data_dir) or, without one, by the alpha channels (alpha_mask). Without masked_loss
    sd-scripts does not read that folder: it is left out with a note; masked_loss with no mask at all is an error."""
    masked = flat.pop("masked_loss", None) is True
    folder = flat.get("conditioning_data_dir")
    if folder and not masked:
        del flat["conditioning_data_dir"]
        notes.append(warning("conditioning_data_dir", "was left out: sd-scripts reads mask pictures from it only with "
                             "masked_loss = true; add that to train with the masks",
                             "已忽略：sd-scripts 只在 masked_loss = true 时从中读取遮罩图；如要使用遮罩请加上该项"))
    elif masked and not folder and flat.get("alpha_mask") is not True:
        findings.append(error("masked_loss", "needs masks: set conditioning_data_dir to a folder of mask pictures "
                              "(one a training image, with its file name), or alpha_mask = true to use the pictures' "
                              "transparency", "需要遮罩：请把 conditioning_data_dir 设为遮罩图片文件夹（每张训练图片一张同名"
                              "遮罩图），或设置 alpha_mask = true 以使用图片的透明度"))


# sd-scripts' flags from before optimizer_type, which it still reads as that optimizer
OLD_OPTIMIZER_FLAGS = {"use_8bit_adam": "AdamW8bit", "use_lion_optimizer": "Lion"}


def _old_optimizer_flags(flat: dict[str, Any], findings: list[Finding]) -> None:
    """use_8bit_adam / use_lion_optimizer (taken out of `flat`) as optimizer_type; with another optimizer_type set,
    an error in `findings` (sd-scripts refuses both too)."""
    for flag, name in OLD_OPTIMIZER_FLAGS.items():
        if flat.pop(flag, None) is not True:
            continue
        if flat.get("optimizer_type") in (None, "", name):
            flat["optimizer_type"] = name
        else:
            findings.append(error(flag, f"names {name}, and optimizer_type names {flat['optimizer_type']}; keep one "
                                  "(optimizer_type is the current way)", f"指定了 {name}，而 optimizer_type 指定了 "
                                  f"{flat['optimizer_type']}；请只保留一个（optimizer_type 是现行写法）"))
    if flat.get("optimizer_type") == "":  # sd-scripts' default, which it reads as AdamW
        flat["optimizer_type"] = "AdamW"


def read_fp8_flags(flat: dict[str, Any], notes: list[Finding]) -> None:
    """sd-scripts' fp8_base_unet (taken out of `flat`) stores only the denoiser in fp8: Danlu's speed.fp8_base. Its
    fp8_base alone stores the frozen text encoders in fp8 as well, which Danlu does not: a note in `notes`."""
    if flat.pop("fp8_base_unet", None) is True:
        flat["fp8_base"] = True
    elif flat.get("fp8_base") is True:
        notes.append(warning("fp8_base", "sd-scripts also stores the frozen text encoders in fp8 with it (for Flux, "
                             "T5-XXL); Danlu keeps them in the compute precision, as sd-scripts' fp8_base_unet does: "
                             "their outputs are not rounded, and they take twice the memory (T5-XXL about 4.7 GB "
                             "more). Add fp8_base_unet = true to the file to silence this.",
                             "sd-scripts 开启它时还会以 fp8 存放冻结的文本编码器（Flux 为 T5-XXL）；丹炉像 sd-scripts 的 "
                             "fp8_base_unet 一样让它们保持计算精度：输出不经 fp8 舍入，但占用两倍内存（T5-XXL 约多 4.7 GB）。"
                             "在文件中加上 fp8_base_unet = true 即可消除此提示。"))


def export_flags(cfg, out: dict[str, Any]) -> None:
    """The sd-scripts flags a Danlu config needs written beside its settings (`out`, sd-scripts names): fp8_base_unet
    with fp8_base, so the text encoders stay in the compute precision; masked_loss with a mask folder, which
    sd-scripts reads only then."""
    if cfg.speed.fp8_base:
        out["fp8_base_unet"] = True
    if cfg.dataset.conditioning_data_dir:
        out["masked_loss"] = True


def read_renamed_flags(flat: dict[str, Any], findings: list[Finding], notes: list[Finding]) -> None:
    """caption_extention (sd-scripts' old spelling, which wins over caption_extension there too), use_safetensors (the
    save format when save_model_as names none), model_type (Flux's: flux, or chroma, which Danlu does not train) and
    dynamo_backend (taken out of `flat`): Danlu compiles with inductor, sd-scripts' default, so any other backend is
    an error."""
    old = flat.pop("caption_extention", None)
    if old is not None:
        given = flat.get("caption_extension")
        if given is not None and given != old:
            notes.append(warning("caption_extension", f"'{given}' is replaced by caption_extention '{old}', as "
                                 "sd-scripts does; remove one of them", f"'{given}' 被 caption_extention '{old}' 取代，"
                                 "与 sd-scripts 相同；请删除其中一个"))
        flat["caption_extension"] = old
    if flat.pop("use_safetensors", None) is True:  # sd-scripts: the format when save_model_as does not name one
        flat.setdefault("save_model_as", "safetensors")
    if str(flat.pop("model_type", "flux")).lower() != "flux":  # flux_train_network.py's; "chroma" is the other
        findings.append(error("model_type", "Chroma is not supported: Danlu trains FLUX.1 models (model_type = flux); "
                              "remove model_type or set it to flux, with a FLUX.1 base model",
                              "不支持 Chroma：丹炉训练的是 FLUX.1 模型（model_type = flux）；请删除 model_type 或设为 flux，"
                              "并使用 FLUX.1 底模"))
    backend = flat.pop("dynamo_backend", "inductor")
    if flat.get("torch_compile") is True and str(backend).lower() != "inductor":
        findings.append(error("dynamo_backend", f"'{backend}': Danlu compiles with torch.compile's default backend, "
                              "inductor, only; remove dynamo_backend or set it to inductor",
                              f"'{backend}'：丹炉只使用 torch.compile 的默认后端 inductor 编译；请删除 dynamo_backend "
                              "或设为 inductor"))


def read_hub_flags(flat: dict[str, Any], findings: list[Finding]) -> None:
    """sd-scripts uploads every save once huggingface_repo_id is set (publish.upload_every_save in Danlu), and
    resume_from_huggingface (taken out of `flat`) reads the state to resume from the Hub, which Danlu does not."""
    if str(flat.get("huggingface_repo_id") or "").strip():
        flat.setdefault("upload_every_save", True)
    if flat.pop("resume_from_huggingface", None) is True:
        findings.append(error("resume_from_huggingface", "is not supported: download the state folder first "
                              "(hf download REPO --include 'FOLDER/*' --local-dir DIR) and set resume to DIR/FOLDER",
                              "不支持：请先下载状态文件夹（hf download 仓库 --include '文件夹/*' --local-dir 目录），"
                              "再把 resume 设为 目录/文件夹"))
