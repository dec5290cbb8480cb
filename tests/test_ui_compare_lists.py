"""Compare tab lists and defaults in a real browser (issue 10.8): files grouped by run, newest run first and
its final file first; no "none found" note beside listed files; the size defaults to the base model's own;
no badge over the grid; ticking a run's LoRA brings that run's prompts."""

from __future__ import annotations

import os
import time

import pytest
from browser_app import running_app
from playwright.sync_api import expect

from trainer.config import config_from_dict, save_config

pytestmark = pytest.mark.browser


def touch(path, age_s: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def test_lists_grouped_newest_first_and_size_from_the_model(tmp_path, page):
    from trainer.models.demo import ensure_demo_model

    ws = tmp_path / "ws"
    ensure_demo_model(ws / "models")
    with running_app(ws) as url:
        old, new = ws / "runs" / "20260101-100000-000-old", ws / "runs" / "20260102-100000-000-new"
        for name, age in (("old-000001", 400), ("old-000002", 350), ("old", 300)):
            touch(old / "output" / f"{name}.safetensors", age)
        for name, age in (("new-000001", 200), ("new", 100), ("new-000002", 50)):
            touch(new / "output" / f"{name}.safetensors", age)
        save_config(config_from_dict({"sampling": {"sample_prompts": "zk, red circle\nzk, blue square",
                                                   "sample_negative_prompt": "blurry"}}), new / "config.toml")
        page.goto(url)
        page.get_by_role("tab", name="Compare LoRAs").click()
        labels = page.locator("#compare-loras label")
        expect(labels).to_have_count(6)
        texts = [x.strip() for x in labels.all_inner_texts()]
        order = [next(n for n in ("new-000002", "new-000001", "old-000002", "old-000001", "new", "old")
                      if n + ".safetensors" in t) for t in texts]
        assert order == ["new", "new-000002", "new-000001", "old", "old-000002", "old-000001"], texts
        assert "20260102-100000-000-new" in texts[0] and "final" in texts[0]
        assert "No .safetensors" not in page.locator("#tab-compare").inner_text()
        expect(page.locator("#compare-width input")).to_have_value("64")
        expect(page.locator("#compare-height input")).to_have_value("64")
        labels.first.locator("input").check()  # the "new" run's final file: its prompts replace the placeholder
        expect(page.locator("#compare-prompts textarea")).to_have_value("zk, red circle\nzk, blue square")
        expect(page.locator("#compare-negative textarea, #compare-negative input").first).to_have_value("blurry")
        badge = page.locator("#compare-image [data-testid='block-label']")
        assert badge.count() == 0 or not badge.first.is_visible(), "no badge over the grid's title"
