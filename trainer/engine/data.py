"""From the dataset folder to a batch sampler and dataset, with the latent cache filled first."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from trainer.config import TrainConfig
from trainer.config.rules_images import parse_face_crop_range
from trainer.data.buckets import bucket_info, plan_buckets
from trainer.data.captions import process_caption, warmup_steps_of
from trainer.data.face_crop import face_in_name
from trainer.data.images import has_alpha
from trainer.data.latent_cache import LatentCache, fill_cache
from trainer.data.loader import BucketBatchSampler, DanluDataset
from trainer.data.prior_pairs import PriorPairSampler
from trainer.data.problems import DatasetError
from trainer.data.scan import count_images, scan_dataset
from trainer.engine.build import Models, caption_text, module_fingerprint, resolution_of, with_trigger
from trainer.engine.errors import EngineError, StopRequested
from trainer.engine.loop import optimizer_steps_per_epoch, total_steps
from trainer.engine.validation import held_out
from trainer.networks.metadata import dataset_facts


@dataclass
class Data:
    dataset: DanluDataset
    sampler: BucketBatchSampler
    num_train_images: int  # images x repeats, one epoch (ss_num_train_images)
    num_reg_images: int  # regularisation images x repeats (ss_num_reg_images)
    dataset_facts: dict  # ss_tag_frequency, ss_dataset_dirs, ss_reg_dataset_dirs (trainer.networks.metadata)
    bucket_info: dict
    cached: bool
    validation_items: list = field(default_factory=list)  # held out or from validation_dir (validation.py)


def encode_pixels(vae, pixels: torch.Tensor) -> torch.Tensor:
    param = next(vae.parameters())
    with torch.no_grad():
        latents = vae.encode(pixels.to(param.device, param.dtype)).latent_dist.mode()
    shift = getattr(vae.config, "shift_factor", None) or 0.0  # Flux's AE centres its latents
    return ((latents - shift) * vae.config.scaling_factor).float().cpu()


def fixed_captions(dataset: DanluDataset) -> list[str]:
    """The captions `dataset` hands out when they do not change between steps (what the text-encoder cache rules
    require): each item's caption, or each line of it with wildcard captions (a `{a|b}` choice gives one of its
    forms here; another form is encoded when it first comes up)."""
    out = []
    for item in dataset.items:
        lines = item.caption_lines if dataset.caption_args["wildcard"] and item.caption_lines else [item.caption]
        out += [process_caption(line, rng=random.Random(0), **dataset.caption_args) for line in lines]
    return list(dict.fromkeys(out))


def report_problem(reporter, problem) -> None:
    """A skipped file as a warning; its hint goes apart once (str(problem) already carries it)."""
    reporter.warning(problem.what, problem.hint)


def build_data(cfg: TrainConfig, models: Models, reporter, stop=lambda: False, world: int = 1) -> Data:
    """`stop()` is polled while caching; True ends the build with StopRequested. With `world` processes the
    sampler makes global batches of train_batch_size x world (each process trains its share)."""
    d, c, a, s = cfg.dataset, cfg.caption, cfg.augment, cfg.speed
    try:
        scan = scan_dataset(d.train_data_dir, caption_extension=c.caption_extension, reg_dir=d.reg_data_dir or None)
    except DatasetError as exc:
        raise EngineError(f"dataset.train_data_dir: {exc}",
                          "Point it at the folder that holds 10_name sub-folders.") from None
    for problem in scan.problems:
        report_problem(reporter, problem)
    items, held = held_out(cfg, with_trigger(scan.items, c.trigger_word, c.weighted_captions, c.caption_separator),
                           reporter)
    if held:
        reporter.status(f"validation: {len(held)} images")
    plan = plan_buckets(items, resolution=resolution_of(cfg), min_reso=d.min_bucket_reso, max_reso=d.max_bucket_reso,
                        step=d.bucket_reso_steps, enable_bucket=d.enable_bucket, no_upscale=d.bucket_no_upscale)
    bucket_of = [plan[i] for i in range(len(items))]
    if d.conditioning_data_dir:
        _warn_without_mask_pictures(items, d.conditioning_data_dir, reporter)
    elif d.alpha_mask:
        _warn_without_alpha(items, reporter)
    cache = None
    if s.cache_latents or s.cache_latents_to_disk:
        cache, items, bucket_of = _fill_latents(cfg, models, items, bucket_of, reporter, stop)
    sampler = _sampler(cfg, items, bucket_of, cfg.training.train_batch_size * world, reporter)
    dataset = DanluDataset(
        items, bucket_of, latent_cache=cache, random_crop=a.random_crop, flip_aug=a.flip_aug, color_aug=a.color_aug,
        shuffle_caption=c.shuffle_caption, keep_tokens=c.keep_tokens, keep_tokens_separator=c.keep_tokens_separator,
        caption_dropout_rate=c.caption_dropout_rate, caption_tag_dropout_rate=c.caption_tag_dropout_rate,
        caption_dropout_every_n_epochs=c.caption_dropout_every_n_epochs, wildcard=c.enable_wildcard,
        **caption_text(c), token_warmup_min=c.token_warmup_min,
        token_warmup_steps=warmup_steps_of(c.token_warmup_step, _run_steps(cfg, sampler)),
        alpha_mask=d.alpha_mask, mask_dir=d.conditioning_data_dir, interpolation=d.resize_interpolation,
        face_crop_aug_range=_face_crop_range(cfg, items, cache is not None, reporter),
    )
    counts = count_images(scan)
    # A split's images leave training with their repeats; a validation folder's never were in it.
    held_repeats = 0 if cfg.validation.validation_dir.strip() else sum(it.repeats for it in held)
    return Data(dataset, sampler, counts.train_repeated - held_repeats, counts.reg_repeated,
                dataset_facts(scan.items), bucket_info(items, dict(enumerate(bucket_of))), cache is not None, held)


def _run_steps(cfg: TrainConfig, sampler) -> int:
    """The run's optimizer steps, as the session counts them (sd-scripts' max_train_steps, which a share of
    token_warmup_step is taken of)."""
    return total_steps(cfg, optimizer_steps_per_epoch(len(sampler), cfg.training.gradient_accumulation_steps))[0]


def _face_crop_range(cfg: TrainConfig, items, cached: bool, reporter) -> tuple[float, float] | None:
    """augment.face_crop_aug_range where it applies: as in sd-scripts, not with buckets or cached latents (the rules
    warn about those); a range no file name gives a face for is said once."""
    aug_range = parse_face_crop_range(cfg.augment.face_crop_aug_range)
    if aug_range is None or cfg.dataset.enable_bucket or cached:
        return None
    if not any(face_in_name(it.path) for it in items):
        reporter.warning("augment.face_crop_aug_range: no image name gives a face, so every image is fitted as usual",
                         "Name the images <name>_<x>_<y>_<width>_<height>.png with the face's centre and size "
                         "in pixels, as sd-scripts' face detection tool does.")
    return aug_range


def _some_names(paths: list) -> str:
    """The first three file names of `paths`, for a warning about them all."""
    return ", ".join(Path(p).name for p in paths[:3]) + (", ..." if len(paths) > 3 else "")


def _warn_without_alpha(items, reporter) -> None:
    """alpha_mask masks nothing in a picture without transparency (every JPEG): say which ones train whole."""
    opaque = [it.path for it in items if not has_alpha(it.path)]
    if opaque:
        reporter.warning(f"dataset.alpha_mask: {len(opaque)} of {len(items)} images have no alpha channel, so they "
                         f"train whole ({_some_names(opaque)})",
                         "Save the cut-out images as PNG or WebP with a transparent background, or turn "
                         "dataset.alpha_mask off.")


def _warn_without_mask_pictures(items, mask_dir: str, reporter) -> None:
    """A folder that is not there is an error; images without a mask picture in it train whole: say which."""
    from trainer.data.mask_pictures import mask_path
    from trainer.engine.errors import EngineError

    if not Path(mask_dir).is_dir():
        raise EngineError(f"dataset.conditioning_data_dir: {mask_dir} is not a folder",
                          "Choose the folder of mask pictures, or leave it empty.")
    unmasked = [it.path for it in items if mask_path(it.path, mask_dir) is None]
    if unmasked:
        reporter.warning(f"dataset.conditioning_data_dir: {len(unmasked)} of {len(items)} images have no mask picture "
                         f"in {mask_dir}, so they train whole ({_some_names(unmasked)})",
                         "Give each image a mask picture with its file name in that folder.")


def _sampler(cfg: TrainConfig, items, bucket_of, batch_size: int, reporter):
    """Dreambooth with class images pairs each instance image with a class image in every batch; otherwise
    (LoRA, as sd-scripts) the class images are only balanced over the epoch."""
    repeats = [it.repeats for it in items]
    ga = cfg.training.gradient_accumulation_steps  # the keys carry each batch's optimizer step (tag warm-up)
    if cfg.model.training_type != "dreambooth" or not any(it.is_reg for it in items):
        return BucketBatchSampler(bucket_of, batch_size, cfg.training.seed, repeats=repeats, accumulation=ga)
    sampler = PriorPairSampler(bucket_of, [it.is_reg for it in items], batch_size, cfg.training.seed, repeats=repeats,
                               accumulation=ga)
    lonely = sampler.buckets_without_class_images()
    if lonely:
        sizes = ", ".join(f"{w}x{h}" for w, h in lonely)
        reporter.warning(f"prior preservation: no class image falls in the bucket(s) {sizes}, so their batches "
                         "train without class images",
                         "Give the class images the training images' aspect ratios, or set dataset.enable_bucket "
                         "off so every image shares one size.")
    return sampler


def _fill_latents(cfg: TrainConfig, models: Models, items, bucket_of, reporter, stop):
    s = cfg.speed
    cache = LatentCache("disk" if s.cache_latents_to_disk else "memory", module_fingerprint(models.vae),
                        interpolation=cfg.dataset.resize_interpolation)
    reporter.status("caching latents", 0.0)

    def progress(done: int, total: int) -> None:
        reporter.status(f"caching latents {done}/{total}", done / max(total, 1))
        if stop():  # caching a large set takes minutes: a Stop must not wait for it
            raise StopRequested

    report = fill_cache(cache, zip(items, bucket_of, strict=True), lambda px: encode_pixels(models.vae, px),
                        batch_size=s.vae_batch_size, progress=progress, flip_aug=cfg.augment.flip_aug)
    for problem in report.problems:
        report_problem(reporter, problem)
    failed = report.failed_paths
    kept = [(it, b) for it, b in zip(items, bucket_of, strict=True) if it.path not in failed]
    if not kept:
        raise EngineError("no image of the dataset could be read", "Re-save the images as PNG or JPEG.")
    reporter.status(f"latents: {report.encoded} encoded, {report.reused} reused from the cache", 1.0)
    return cache, [k[0] for k in kept], [k[1] for k in kept]
