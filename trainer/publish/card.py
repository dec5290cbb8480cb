"""The model card (`<name>.md`) written next to a finished LoRA or Dreambooth checkpoint, built from its own
header so the two agree.

The card is a Hugging Face model card: YAML metadata (huggingface_hub's ModelCardData, so the Hub shows the base
model, license, tags and sample widget) and a Markdown body people read on the Hub, Civitai or disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

TOP_TAGS = 40  # tags listed per folder; the full counts stay in the file's ss_tag_frequency
# (label, header key) of the settings a reader of a LoRA card looks for.
KEY_SETTINGS = (
    ("Network", "ss_network_module"), ("Rank (network_dim)", "ss_network_dim"),
    ("Alpha (network_alpha)", "ss_network_alpha"), ("Optimizer", "ss_optimizer"),
    ("Learning rate", "ss_learning_rate"), ("U-Net learning rate", "ss_unet_lr"),
    ("Text encoder learning rate", "ss_text_encoder_lr"), ("LR scheduler", "ss_lr_scheduler"),
    ("Epochs", "ss_num_epochs"), ("Steps", "ss_steps"), ("Batch size", "ss_batch_size_per_device"),
    ("Training images (x repeats)", "ss_num_train_images"), ("Resolution", "ss_resolution"),
    ("Mixed precision", "ss_mixed_precision"), ("Seed", "ss_seed"), ("clip_skip", "ss_clip_skip"),
    ("Noise offset", "ss_noise_offset"), ("min_snr_gamma", "ss_min_snr_gamma"),
    ("Prior loss weight", "ss_prior_loss_weight"),
)
CHECKPOINT = "checkpoint"  # `kind` of a Dreambooth run's full checkpoint (else "LoRA")


@dataclass(frozen=True)
class Sample:
    link: str  # relative path or URL of the image, as the card should show it
    prompt: str


def model_card(header: dict[str, str], file_name: str, samples: list[Sample], kind: str = "LoRA") -> str:
    """The card's text for `file_name` (a LoRA, or with kind "checkpoint" a full Dreambooth checkpoint) whose
    header is `header`."""
    from huggingface_hub import ModelCardData

    full = kind == CHECKPOINT
    title = header.get("modelspec.title", file_name)
    trigger = header.get("modelspec.trigger_phrase", "")
    what = "dreambooth" if full else "lora"
    data = ModelCardData(
        base_model=_hub_id(header.get("ss_sd_model_name", "")), license=header.get("modelspec.license") or None,
        base_model_relation="finetune" if full else "adapter",
        tags=[what, "text-to-image", "stable-diffusion", "danlu", *_split(header.get("modelspec.tags", ""))],
        instance_prompt=trigger or None,
        widget=[{"text": s.prompt, "output": {"url": s.link}} for s in samples] or None)
    body = [f"# {title}", ""]
    if header.get("modelspec.description"):
        body += [header["modelspec.description"], ""]
    arch = header.get("modelspec.architecture", "?").split("/")[0]  # a LoRA's is "<model>/lora"
    body += [f"A full checkpoint (Dreambooth fine-tune of the whole model, `{arch}`), trained with Danlu: load it "
             "as a base model, not as a LoRA." if full else f"A LoRA for `{arch}`, trained with Danlu.", "",
             f"- **File:** `{file_name}`" + (f" (sshs hash `{header['sshs_model_hash'][:12]}`)"
                                             if header.get("sshs_model_hash") else ""),
             f"- **Base model:** {_base_model(header)}",
             f"- **Trigger word:** `{trigger}`" if trigger else "- **Trigger word:** none", ""]
    body += ["## Settings", "", "| Setting | Value |", "|---|---|"]
    body += [f"| {label} | `{header[key]}` |" for label, key in KEY_SETTINGS if header.get(key, "None") != "None"]
    body += ["", *_tag_tables(header.get("ss_tag_frequency", "{}"))]
    if samples:
        body += ["## Samples", ""] + [f"![{_one_line(s.prompt)}]({s.link})\n\n*{_one_line(s.prompt)}*\n"
                                      for s in samples]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body).rstrip() + "\n"


def _tag_tables(tag_frequency: str) -> list[str]:
    lines = []
    for folder, counts in json.loads(tag_frequency).items():
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:TOP_TAGS]  # stable: ties keep first-seen order
        lines += [f"## Tags in `{folder}`", "", "| Tag | Count |", "|---|---|"]
        lines += [f"| {tag} | {n} |" for tag, n in top]
        if len(counts) > TOP_TAGS:
            lines.append(f"| ... {len(counts) - TOP_TAGS} more | |")
        lines.append("")
    return lines


def _base_model(header: dict[str, str]) -> str:
    name = f"`{header.get('ss_sd_model_name', '?')}`"
    old, new = header.get("ss_sd_model_hash", ""), header.get("ss_new_sd_model_hash", "")
    if len(old) == 8:  # a file: A1111 shows these
        name += f" (hash `{old}`, sha256 `{new}`)"
    return name


def _hub_id(name: str) -> str | None:
    """The base model when it is a Hub id (owner/name); local files and folders have no Hub page."""
    parts = name.split("/")
    return name if len(parts) == 2 and all(parts) and not name.endswith((".safetensors", ".ckpt")) else None


def _split(tags: str) -> list[str]:
    return [t.strip() for t in tags.split(",") if t.strip()]


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("]", ")").replace("[", "(")
