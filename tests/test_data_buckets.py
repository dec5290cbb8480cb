"""Bucket list, assignment, no-upscale sizes and the cover-and-crop geometry."""

from __future__ import annotations

import pytest

from trainer.data.buckets import (
    assign_bucket,
    bucket_info,
    centre_crop,
    cover_size,
    make_buckets,
    no_upscale_bucket,
    plan_buckets,
)

SD15_BUCKETS = [
    (256, 1024), (256, 960), (256, 896), (256, 832), (320, 768), (320, 704), (384, 640), (448, 576),
    (512, 512), (576, 448), (640, 384), (704, 320), (768, 320), (832, 256), (896, 256), (960, 256),
    (1024, 256),
]


def test_sd15_bucket_list_is_exactly_the_17_of_sd_scripts():
    assert make_buckets((512, 512), 256, 1024, 64) == SD15_BUCKETS


def test_bucket_list_for_1024_square_keeps_area_and_range():
    buckets = make_buckets((1024, 1024), 256, 2048, 64)
    assert (1024, 1024) in buckets and (2048, 512) in buckets and (512, 2048) in buckets
    assert all(w * h <= 1024 * 1024 and w % 64 == 0 and h % 64 == 0 for w, h in buckets)


def test_bad_bucket_range_is_refused():
    with pytest.raises(ValueError, match="min_bucket_reso"):
        make_buckets((512, 512), 1024, 256, 64)


@pytest.mark.parametrize("size,bucket", [
    ((1000, 1000), (512, 512)),
    ((1920, 1080), (640, 384)),
    ((1080, 1920), (384, 640)),
    ((400, 1600), (256, 1024)),
    ((3000, 1000), (832, 256)),
    ((5000, 100), (1024, 256)),
])
def test_assignment_picks_the_nearest_aspect_ratio(size, bucket):
    assert assign_bucket(size, SD15_BUCKETS) == bucket


@pytest.mark.parametrize("size,bucket", [
    ((1024, 1024), (512, 512)),  # exactly 4x the area: halved
    ((600, 500), (512, 448)),  # over the area: x0.9348 -> 560.9 x 467.4, floored to 64
    ((300, 200), (256, 192)),  # under the area: only floored
    ((1000, 100), (960, 64)),
    ((50, 40), (64, 64)),  # smaller than one step: one step
])
def test_no_upscale_sizes(size, bucket):
    assert no_upscale_bucket(size, 512 * 512, 64) == bucket


def test_plan_without_buckets_sends_everything_to_the_resolution():
    sizes = [(1920, 1080), (300, 800)]
    assert plan_buckets(sizes, resolution=(768, 512), enable_bucket=False) == {0: (768, 512), 1: (768, 512)}
    assert plan_buckets(sizes, resolution=(512, 512)) == {0: (640, 384), 1: (320, 768)}
    assert plan_buckets(sizes, resolution=(512, 512), no_upscale=True) == {0: (640, 384), 1: (256, 768)}


def test_bucket_info_counts_images_times_repeats():
    sizes = [(1000, 1000), (1024, 1024), (1920, 1080)]
    plan = plan_buckets(sizes, resolution=(512, 512))
    info = bucket_info(sizes, plan, repeats=[10, 10, 5])
    assert info["buckets"] == {"0": {"resolution": [512, 512], "count": 20},
                               "1": {"resolution": [640, 384], "count": 5}}
    assert info["mean_img_ar_error"] == pytest.approx(abs(1920 / 1080 - 640 / 384) / 3)


def test_cover_and_centre_crop_geometry():
    assert cover_size((1920, 1080), (640, 384)) == (683, 384)
    assert centre_crop((683, 384), (640, 384)) == (0, 21)
    assert cover_size((100, 100), (512, 512)) == (512, 512)
    assert cover_size((400, 1600), (256, 1024)) == (256, 1024)
