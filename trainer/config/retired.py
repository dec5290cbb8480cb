"""sd-scripts options Danlu dropped on purpose, and what a file that still sets them gets: an imported
sd-scripts / SD-Trainer file (flat names) or a Danlu TOML written before schema version 2 (which had them
as "not supported yet" fields).

- xformers: PyTorch 2's scaled_dot_product_attention (`speed.sdpa`) runs the same memory-efficient attention
  kernels, and the xformers package is not a Danlu dependency; `xformers = true` is read as `sdpa = true`.
- mem_eff_attn: sd-scripts' own memory-efficient attention, the same job as `sdpa`; read as `sdpa = true`.
- lowram: sd-scripts loads the models straight to the GPU with it. Danlu's loaders already read the weights
  into the model without a second copy in system RAM (diffusers' low_cpu_mem_usage), so it was never built.
- highvram, disable_mmap_load_safetensors, skip_cache_check, tokenizer_cache_dir, async_upload and the wandb and
  Hub keys of LEFT_OUT: nothing to change in Danlu, or a secret kept out of its config; set, each is dropped with a
  note.
- debug_dataset: the dataset doctor (`check-data`) shows a dataset; a file that asks for it is refused by name.
- v2: Stable Diffusion 2.x (OpenCLIP-H text encoder, 768-v) is not a family Danlu trains; a file for it is
  refused rather than trained as SD1.5.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trainer.config.errors import ConfigError, Finding, error, warning

# name -> the group it had in a Danlu TOML
RETIRED_GROUPS = {"xformers": "speed", "lowram": "speed", "v2": "model"}


# sd-scripts options that are dropped, with a note each, when a file sets them: what Danlu does instead. A secret's
# value is never repeated.
LEFT_OUT = {
    "highvram": ("was left out: Danlu never empties the CUDA cache between latent batches, which is what highvram "
                 "stops sd-scripts doing", "已忽略：丹炉在缓存潜变量的批次之间本就不清空 CUDA 缓存，这正是 highvram 让 sd-scripts "
                 "不做的事"),
    "disable_mmap_load_safetensors": ("was left out: Danlu reads .safetensors files through safetensors' own loader "
                                      "and has no switch for it", "已忽略：丹炉通过 safetensors 自身的加载器读取 "
                                      ".safetensors 文件，没有对应的开关"),
    "skip_cache_check": ("was left out: Danlu checks a cache file by its header and each image's size, time and "
                         "hash, never by reading the cached tensors, so there is no content check to skip",
                         "已忽略：丹炉只根据缓存文件头和每张图片的大小、时间与哈希检查缓存，从不读取缓存的张量内容，"
                         "因此没有可跳过的内容检查"),
    "cache_info": ("was left out: Danlu's dataset scan reads only the images' headers and caption files, with no "
                   "cache to keep", "已忽略：丹炉扫描数据集时只读取图片文件头和标注文件，无需缓存"),
    "tokenizer_cache_dir": ("was left out: Danlu's tokenizers come with it (assets/model_configs), so none is "
                            "downloaded", "已忽略：丹炉自带分词器（assets/model_configs），无需下载"),
    # the Hub upload (trainer/publish/upload.py) and wandb (trainer/engine/trackers.py)
    "huggingface_token": ("was left out so the token is not written into Danlu's config: run `hf auth login` once, "
                          "or set HF_TOKEN in the environment that starts Danlu",
                          "已忽略，以免令牌写入丹炉的配置：请先运行一次 `hf auth login`，或在启动丹炉的环境中设置 HF_TOKEN"),
    "async_upload": ("was left out: Danlu uploads each save before training goes on (publish.upload_every_save); "
                     "turn that off to upload only the final file, after training",
                     "已忽略：丹炉每次保存后先完成上传再继续训练（publish.upload_every_save）；关闭它则只在训练结束后上传最终文件"),
    "wandb_run_name": ("was left out: Danlu names the wandb run after the run folder",
                       "已忽略：丹炉以训练文件夹名作为 wandb 运行名"),
    "wandb_api_key": ("was left out so the key is not written into Danlu's config: run `wandb login` once, or set "
                      "WANDB_API_KEY in the environment that starts Danlu",
                      "已忽略，以免密钥写入丹炉的配置：请先运行一次 `wandb login`，或在启动丹炉的环境中设置 WANDB_API_KEY"),
    "log_tracker_config": ("was left out: Danlu starts wandb with the project logging.log_tracker_name and no "
                           "extra tracker settings", "已忽略：丹炉以 logging.log_tracker_name 为项目名启动 wandb，不读取额外的跟踪器设置"),
}


def retire(values: dict[str, Any], findings: list[Finding], notes: list[Finding]) -> None:
    """Take the retired options out of a flat dict of settings (mutated): `xformers` sets `sdpa`, a note says
    so; `lowram` is dropped with a note; `v2 = true` is an error in `findings`. False values just go."""
    if values.pop("xformers", None) is True:
        values["sdpa"] = True
        notes.append(warning("xformers", "is read as speed.sdpa = true: PyTorch's scaled_dot_product_attention "
                             "runs the same memory-efficient attention, and xformers is not installed",
                             "按 speed.sdpa = true 读取：PyTorch 的 scaled_dot_product_attention 提供同样省显存的注意力，"
                             "且未安装 xformers"))
    if values.pop("mem_eff_attn", None) is True:
        values["sdpa"] = True
        notes.append(warning("mem_eff_attn", "is read as speed.sdpa = true: PyTorch's scaled_dot_product_attention is "
                             "the memory-efficient attention", "按 speed.sdpa = true 读取：PyTorch 的 "
                             "scaled_dot_product_attention 即是省显存的注意力实现"))
    if values.pop("lowram", None) is True:
        notes.append(warning("lowram", "was left out: Danlu always loads the weights into the model without a "
                             "second copy in system RAM", "已忽略：丹炉加载模型时本就不会在系统内存中多存一份权重"))
    for name, (en, zh) in LEFT_OUT.items():
        if values.pop(name, None) not in (None, "", False):
            notes.append(warning(name, en, zh))
    if values.pop("debug_dataset", None) is True:
        findings.append(error("debug_dataset", "shows the training images and captions without training; Danlu's "
                              "dataset doctor does that: `python -m trainer check-data DATASET` or the Dataset "
                              "doctor panel. Remove debug_dataset to train",
                              "只显示训练图片与标注而不训练；丹炉的数据集检查做的正是这件事：`python -m trainer check-data "
                              "数据集` 或“数据集检查”面板。要训练请删除 debug_dataset"))
    if values.pop("v2", None) is True:
        findings.append(error("v2", "Stable Diffusion 2.x models are not supported; train an SD1.5, SDXL or Flux "
                              "model, or use sd-scripts for SD2.x", "不支持 Stable Diffusion 2.x 模型；请改用 SD1.5、"
                              "SDXL 或 Flux 模型，或用 sd-scripts 训练 SD2.x"))


def drop_from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Schema version 1 -> 2: the retired fields leave their tables (see `retire` for set values)."""
    data = dict(data)
    flat: dict[str, Any] = {}
    for name, group in RETIRED_GROUPS.items():
        table = data.get(group)
        if isinstance(table, dict) and name in table:
            data[group] = table = dict(table)
            flat[name] = table.pop(name)
    findings: list[Finding] = []
    retire(flat, findings, [])
    if flat.get("sdpa"):
        data["speed"] = {**data.get("speed", {}), "sdpa": True}
    if findings:  # named as the Danlu field, group included
        raise ConfigError([dataclasses.replace(f, field=f"{RETIRED_GROUPS[f.field]}.{f.field}") for f in findings])
    return data
