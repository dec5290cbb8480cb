"""The tiny Flux written as the files users download: a BFL-layout transformer file (the inverse of diffusers'
convert_flux_transformer_checkpoint_to_diffusers, for tests only), ae (LDM VAE keys), clip_l and t5xxl files,
and a tiny config root laid out like assets/model_configs/flux, without a tokenizer_2: the loader takes the T5
tokenizer Danlu ships, as it does for users (the tiny T5 has T5 v1.1's 32,128 embedding rows for its ids)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from safetensors.torch import save_file

DOUBLE = {"norm1.linear": "img_mod.lin", "norm1_context.linear": "txt_mod.lin", "attn.to_out.0": "img_attn.proj",
          "attn.to_add_out": "txt_attn.proj", "ff.net.0.proj": "img_mlp.0", "ff.net.2": "img_mlp.2",
          "ff_context.net.0.proj": "txt_mlp.0", "ff_context.net.2": "txt_mlp.2",
          "attn.norm_q.weight": "img_attn.norm.query_norm.scale", "attn.norm_k.weight": "img_attn.norm.key_norm.scale",
          "attn.norm_added_q.weight": "txt_attn.norm.query_norm.scale",
          "attn.norm_added_k.weight": "txt_attn.norm.key_norm.scale"}
DOUBLE_FUSED = {"img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
                "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")}
SINGLE = {"proj_out": "linear2", "norm.linear": "modulation.lin", "attn.norm_q.weight": "norm.query_norm.scale",
          "attn.norm_k.weight": "norm.key_norm.scale"}
TOP = {"x_embedder": "img_in", "context_embedder": "txt_in", "proj_out": "final_layer.linear",
       "time_text_embed.timestep_embedder.linear_1": "time_in.in_layer",
       "time_text_embed.timestep_embedder.linear_2": "time_in.out_layer",
       "time_text_embed.text_embedder.linear_1": "vector_in.in_layer",
       "time_text_embed.text_embedder.linear_2": "vector_in.out_layer",
       "time_text_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
       "time_text_embed.guidance_embedder.linear_2": "guidance_in.out_layer"}


def _copy(sd, out, src, dst):
    if src.endswith(".weight"):  # a norm scale
        out[dst] = sd[src]
        return
    for suffix in (".weight", ".bias"):
        if src + suffix in sd:
            out[dst + suffix] = sd[src + suffix]


def _fused(sd, out, dst, sources):
    for suffix in (".weight", ".bias"):
        out[dst + suffix] = torch.cat([sd[s + suffix] for s in sources])


def bfl_state_dict(transformer) -> dict[str, torch.Tensor]:
    sd, out = transformer.state_dict(), {}
    for i in range(transformer.config.num_layers):
        for src, dst in DOUBLE.items():
            _copy(sd, out, f"transformer_blocks.{i}.{src}", f"double_blocks.{i}.{dst}")
        for dst, sources in DOUBLE_FUSED.items():
            _fused(sd, out, f"double_blocks.{i}.{dst}", [f"transformer_blocks.{i}.{s}" for s in sources])
    for i in range(transformer.config.num_single_layers):
        for src, dst in SINGLE.items():
            _copy(sd, out, f"single_transformer_blocks.{i}.{src}", f"single_blocks.{i}.{dst}")
        _fused(sd, out, f"single_blocks.{i}.linear1",
               [f"single_transformer_blocks.{i}.{s}" for s in ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")])
    for src, dst in TOP.items():
        _copy(sd, out, src, dst)
    for suffix in (".weight", ".bias"):  # diffusers stores (scale, shift); BFL (shift, scale)
        scale, shift = sd["norm_out.linear" + suffix].chunk(2)
        out["final_layer.adaLN_modulation.1" + suffix] = torch.cat([shift, scale])
    return {k: v.contiguous() for k, v in out.items()}


def flux_width_transformer(dev: bool):
    """One double and one single block at FLUX.1's real width (24 heads x 128 = 3072), which diffusers' BFL
    single-file converter hard-codes; the text/pooled widths stay tiny (~480M parameters in all)."""
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(1)
    return FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                  attention_head_dim=128, num_attention_heads=24, joint_attention_dim=32,
                                  pooled_projection_dim=32, axes_dims_rope=[16, 56, 56], guidance_embeds=dev)


def t5_with_t5_vocab(tiny):
    """The tiny T5 encoder's shape with T5 v1.1's 32,128 token embeddings."""
    from transformers import T5EncoderModel

    config = copy.deepcopy(tiny.config)
    config.vocab_size = 32128
    torch.manual_seed(2)
    return T5EncoderModel(config)


def write_flux_files(root: Path, dev: bool = True, fp8: bool = False) -> dict[str, Path]:
    """flux1.safetensors (BFL layout, real width), ae, clip_l, t5xxl and a tiny config root under `root`;
    returns the paths and the pipeline they came from (key "pipe")."""
    from transformers import AutoTokenizer

    from trainer.models.flux_single_file import T5_TOKENIZER
    from trainer.models.sd15_single_file import vae_to_ldm
    from trainer.models.tiny import build_tiny_flux

    pipe = build_tiny_flux(seed=0, dev=dev, vae_8x=True)
    pipe.transformer = flux_width_transformer(dev)
    pipe.text_encoder_2 = t5_with_t5_vocab(pipe.text_encoder_2)
    pipe.tokenizer_2 = AutoTokenizer.from_pretrained(T5_TOKENIZER)
    root.mkdir(parents=True, exist_ok=True)
    transformer = bfl_state_dict(pipe.transformer)
    if fp8:
        transformer = {k: v.to(torch.float8_e4m3fn) for k, v in transformer.items()}
    files = {name: root / f"{name}.safetensors" for name in ("flux1", "ae", "clip_l", "t5xxl")}
    save_file(transformer, str(files["flux1"]))
    save_file({k.removeprefix("first_stage_model."): v.contiguous() for k, v in vae_to_ldm(pipe.vae).items()},
              str(files["ae"]))
    save_file({f"text_model.{k}": v.contiguous() for k, v in pipe.text_encoder.state_dict().items()},
              str(files["clip_l"]))
    t5 = {k: v.contiguous() for k, v in pipe.text_encoder_2.state_dict().items() if k != "encoder.embed_tokens.weight"}
    save_file(t5, str(files["t5xxl"]))
    configs = root / "configs"
    variant = "dev" if dev else "schnell"
    pipe.transformer.save_config(configs / f"transformer_{variant}")
    pipe.vae.save_config(configs / "vae")
    pipe.scheduler.save_config(configs / f"scheduler_{variant}")
    pipe.text_encoder.config.save_pretrained(configs / "text_encoder")
    pipe.text_encoder_2.config.save_pretrained(configs / "text_encoder_2")
    pipe.tokenizer.save_pretrained(configs / "tokenizer")
    return {**files, "configs": configs, "pipe": pipe}
