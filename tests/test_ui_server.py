"""The real `python app.py`: TensorBoard on the same port (and behind --auth), the TensorBoard tab."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.conftest import screenshot
from trainer.config import TrainConfig, save_config
from trainer.events import EventWriter

RUN = "20260101-120000-000-tbdemo"


def write_run(workspace: Path) -> None:
    """A finished run as the engine leaves it: config, events and TensorBoard scalars."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir = workspace / "runs" / RUN
    save_config(TrainConfig(), run_dir / "config.toml")
    writer, events = SummaryWriter(log_dir=str(run_dir / "tb")), EventWriter(run_dir)
    events.emit("started", total_steps=5, epochs=1, steps_per_epoch=5, images=5, device="cpu", family="sd15")
    for step in range(1, 6):
        writer.add_scalar("loss/current", 1.0 / step, step)
        events.emit("progress", step=step, total=5, epoch=1, epochs=1, loss=1.0 / step, avg_loss=1.5 / step,
                    lr={"unet": 1e-4}, it_s=2.0, eta_s=5 - step)
    events.emit("finished", step=5, outputs=[])
    writer.close()
    events.close()


def get(url: str, opener=None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=30) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


@pytest.mark.browser
def test_tensorboard_same_port_and_tab_shows_scalar(start_app, page, tmp_path):
    ws = tmp_path / "ws"
    write_run(ws)
    url = start_app(workspace=ws)
    status, body = get(url + "/tensorboard/")
    assert status == 200 and "tb-relative-root" in body  # TensorBoard's own page, on Gradio's port
    page.goto(url)
    page.get_by_role("tab", name="TensorBoard").click()
    frame = page.frame_locator("#tensorboard-frame iframe")
    frame.get_by_text("loss/current").first.wait_for(timeout=45_000)
    runs = json.loads(get(url + "/tensorboard/data/runs")[1])
    assert f"{RUN}/tb" in runs
    screenshot(page, "tab-tensorboard")
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-progress [data-status='finished']").wait_for()
    screenshot(page, "tab-runs")


def test_auth_guards_tensorboard(start_app, tmp_path):
    url = start_app(workspace=tmp_path / "ws", extra=["--auth", "ann:secret"])
    status, body = get(url + "/tensorboard/")
    assert status == 401 and "tb-relative-root" not in body
    assert get(url + "/tensorboard/data/runs")[0] == 401
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = urllib.parse.urlencode({"username": "ann", "password": "secret"}).encode()
    assert opener.open(url + "/login", data=form, timeout=30).status == 200
    status, body = get(url + "/tensorboard/", opener)
    assert status == 200 and "tb-relative-root" in body
