"""Tiny random SD1.5 / SDXL / Flux pipelines, built offline, for tests and the app's first-run demo.

Sizes follow diffusers' own fast tests, so a forward pass takes milliseconds on a CPU. Every builder is
deterministic for a given seed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    PNDMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

from trainer.models.tokenizer import tiny_clip_tokenizer, tiny_t5_tokenizer

# The noise schedule every SD1.x/SDXL checkpoint was trained with.
SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000}
TINY_VOCAB = 514  # len(tiny_clip_tokenizer())


def sd15_scheduler() -> PNDMScheduler:
    """The scheduler SD1.5 ships with (PNDM, PLMS steps only)."""
    return PNDMScheduler(**SD_BETAS, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)


def _clip_config(hidden: int = 32, projection_dim: int = 32) -> CLIPTextConfig:
    return CLIPTextConfig(
        hidden_size=hidden, intermediate_size=37, num_hidden_layers=5, num_attention_heads=4,
        vocab_size=TINY_VOCAB, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=TINY_VOCAB - 2, eos_token_id=TINY_VOCAB - 1, pad_token_id=TINY_VOCAB - 1,
        projection_dim=projection_dim,
    )


def tiny_sd15_unet(four_level: bool = False) -> UNet2DConditionModel:
    if four_level:
        # The real SD1.x topology (3 attention levels + 1 plain, 2 layers each) at toy widths, so that the
        # original single-file layout (input_blocks 0..11, output_blocks 0..11) exists.
        return UNet2DConditionModel(
            block_out_channels=(8, 8, 16, 16), layers_per_block=2, sample_size=8, in_channels=4, out_channels=4,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=32, attention_head_dim=2, norm_num_groups=4,
        )
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
    )


def tiny_sd_vae(four_level: bool = False) -> AutoencoderKL:
    if four_level:
        return AutoencoderKL(
            block_out_channels=(8, 8, 16, 16), in_channels=3, out_channels=3, latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=2, norm_num_groups=4, sample_size=64, scaling_factor=0.18215,
        )
    return AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=64, scaling_factor=0.18215,
    )


def build_tiny_sd15(seed: int = 0, four_level: bool = False) -> StableDiffusionPipeline:
    """Random SD1.5-shaped pipeline; `four_level=True` gives the topology a single-file checkpoint needs."""
    torch.manual_seed(seed)
    unet = tiny_sd15_unet(four_level)
    vae = tiny_sd_vae(four_level)
    text_encoder = CLIPTextModel(_clip_config())
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tiny_clip_tokenizer(), unet=unet,
        scheduler=sd15_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )


# Text encoder 2's width in the real-layout tiny SDXL: unlike CLIP-L's, as in SDXL (768 vs 1280), which is how
# diffusers' single-file loader tells the two encoders apart.
TINY_BIGG_WIDTH = 40


def tiny_sdxl_unet(real_layout: bool = False) -> UNet2DConditionModel:
    """SDXL's text_time conditioning: 6 micro-conditioning numbers x 8 + the 32-dim pooled projection of text
    encoder 2 = 80 inputs; cross-attention over both encoders' hidden states joined (32 + 32, or 32 + 40)."""
    common = dict(layers_per_block=2, in_channels=4, out_channels=4, use_linear_projection=True,
                  addition_embed_type="text_time", addition_time_embed_dim=8,
                  projection_class_embeddings_input_dim=80,
                  cross_attention_dim=32 + (TINY_BIGG_WIDTH if real_layout else 32))
    if real_layout:
        # SDXL's own topology (a plain level, then two attention levels; deeper transformers further down) at
        # toy widths, so that the original SGM layout of a single-file checkpoint exists.
        return UNet2DConditionModel(
            block_out_channels=(8, 16, 16), sample_size=8, norm_num_groups=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 2, 4), transformer_layers_per_block=(1, 1, 2), **common)
    return UNet2DConditionModel(
        block_out_channels=(32, 64), sample_size=32, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 2), **common)


def build_tiny_sdxl(seed: int = 0, real_layout: bool = False) -> StableDiffusionXLPipeline:
    """Random SDXL-shaped pipeline: text_time conditioning and two CLIP encoders (the second projected, its
    tokenizer padding with "!" like OpenCLIP bigG's). `real_layout=True`: SDXL's three-level U-Net and an 8x VAE,
    so 64 px images train on 8x8 latents and a single-file checkpoint can be written."""
    torch.manual_seed(seed)
    unet = tiny_sdxl_unet(real_layout)
    vae = tiny_sd_vae(four_level=real_layout)
    vae.register_to_config(scaling_factor=0.13025)  # SDXL's VAE scale
    text_encoder = CLIPTextModel(_clip_config())
    text_encoder_2 = CLIPTextModelWithProjection(_clip_config(hidden=TINY_BIGG_WIDTH if real_layout else 32))
    scheduler = EulerDiscreteScheduler(**SD_BETAS, steps_offset=1, timestep_spacing="leading")
    tokenizer_2 = tiny_clip_tokenizer()
    tokenizer_2.pad_token = "!"
    return StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tiny_clip_tokenizer(),
        tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler, add_watermarker=False,
    )


def tiny_t5_encoder() -> T5EncoderModel:
    # gated-gelu like T5 v1.1 / Flux's T5-XXL (T5DenseGatedActDense: wi_0, wi_1, wo)
    config = T5Config(vocab_size=384, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, decoder_start_token_id=0, feed_forward_proj="gated-gelu")
    return T5EncoderModel(config)


def build_tiny_flux(seed: int = 0, dev: bool = False, vae_8x: bool = False, blocks: tuple[int, int] = (1, 1),
                    ) -> FluxPipeline:
    """Random Flux-shaped pipeline (`blocks`: double and single blocks, 1-channel latents packed 2x2 -> 4).
    `dev=True`: a guidance embedder like FLUX.1-dev's (schnell has none). `vae_8x=True`: an AE that downsamples
    8x like Flux's, so 64 px images train on 8x8 latents (16 packed tokens), which is fast."""
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=blocks[0], num_single_layers=blocks[1], attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
        guidance_embeds=dev,
    )
    vae = AutoencoderKL(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4, 4, 4, 4) if vae_8x else (4,),
        down_block_types=("DownEncoderBlock2D",) * (4 if vae_8x else 1),
        up_block_types=("UpDecoderBlock2D",) * (4 if vae_8x else 1), layers_per_block=1,
        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035,
    )
    # FLUX.1-dev's scheduler settings (resolution-dependent shift).
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096,
    )
    return FluxPipeline(
        scheduler=scheduler, vae=vae, text_encoder=CLIPTextModel(_clip_config()),
        tokenizer=tiny_clip_tokenizer(), text_encoder_2=tiny_t5_encoder(), tokenizer_2=tiny_t5_tokenizer(),
        transformer=transformer,
    )


BUILDERS = {"sd15": build_tiny_sd15, "sdxl": build_tiny_sdxl, "flux": build_tiny_flux}


def save_tiny(family: str, out_dir: Path, seed: int = 0, single_file: bool = False) -> Path:
    """Save a tiny pipeline as a diffusers folder at `out_dir` and return `out_dir`.

    With `single_file=True` (SD1.5 and SDXL) the variant in the family's real block layout is saved, plus an
    original-layout checkpoint `<out_dir>.safetensors` beside the folder, whose path is returned; `out_dir` then
    doubles as the local `config=` folder that `from_single_file` needs.
    """
    if family not in BUILDERS:
        raise ValueError(f"unknown tiny model family {family!r}; choose one of {sorted(BUILDERS)}")
    if single_file and family not in ("sd15", "sdxl"):
        raise ValueError(f"single-file export is implemented for sd15 and sdxl only, not {family!r}")
    out_dir = Path(out_dir)
    if not single_file:
        BUILDERS[family](seed).save_pretrained(out_dir, safe_serialization=True)
        return out_dir
    file = out_dir.parent / f"{out_dir.name}.safetensors"
    if family == "sdxl":
        from trainer.models.sdxl_single_file import save_sdxl_single_file

        pipe = build_tiny_sdxl(seed, real_layout=True)
        pipe.save_pretrained(out_dir, safe_serialization=True)
        return save_sdxl_single_file(pipe, file)
    from trainer.models.sd15_single_file import save_sd15_single_file

    pipe = build_tiny_sd15(seed, four_level=True)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    return save_sd15_single_file(pipe, file)
