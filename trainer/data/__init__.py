"""Everything between a dataset folder and a batch of tensors: scan, buckets, images, captions, caches."""

from trainer.data.buckets import (
    assign_bucket,
    bucket_info,
    centre_crop,
    cover_size,
    make_buckets,
    no_upscale_bucket,
    plan_buckets,
)
from trainer.data.captions import drops_all_captions, process_caption, split_tags
from trainer.data.images import augment, fit_to_bucket, load_image, to_rgb, to_tensor
from trainer.data.latent_cache import FillReport, LatentCache, fill_cache
from trainer.data.loader import BucketBatchSampler, DanluDataset, collate_batch, steps_per_epoch
from trainer.data.problems import DatasetError, ImageLoadError, Problem
from trainer.data.scan import DatasetScan, ImageCounts, ImageItem, count_images, scan_dataset, tag_frequency
from trainer.data.tensor_cache import TensorCache

__all__ = [
    "BucketBatchSampler", "DanluDataset", "DatasetError", "DatasetScan", "FillReport", "ImageCounts",
    "ImageItem", "ImageLoadError", "LatentCache", "Problem", "TensorCache", "assign_bucket", "augment",
    "bucket_info", "centre_crop", "collate_batch", "count_images", "cover_size", "drops_all_captions",
    "fill_cache", "fit_to_bucket", "load_image", "make_buckets", "no_upscale_bucket", "plan_buckets",
    "process_caption", "scan_dataset", "split_tags", "steps_per_epoch", "tag_frequency", "to_rgb", "to_tensor",
]
