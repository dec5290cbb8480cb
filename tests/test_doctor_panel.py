"""The doctor panel in a page of its own (the Novice/Expert tabs embed the same function)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from conftest import free_port
from test_doctor_check import make_fixture

from ui.components.doctor_panel import build_doctor_panel
from ui.context import AppContext

pytestmark = pytest.mark.browser


@pytest.fixture
def panel_url(tmp_path):
    ctx = AppContext(workspace=tmp_path / "ws", lang="zh")
    with gr.Blocks() as demo:
        folder = gr.Textbox(label="folder", elem_id="folder")
        trigger = gr.Textbox("zk", label="trigger", elem_id="trigger")
        build_doctor_panel(ctx, folder, ".txt", trigger, batch_size=4)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}"
    demo.close()


def test_panel_reports_findings_in_the_page_language(panel_url, page, tmp_path: Path):
    root = make_fixture(tmp_path / "train")
    page.goto(panel_url)
    page.locator("#doctor-panel").get_by_text("数据集体检").click()
    page.locator("#doctor-run").click()
    # The report shows a "processing" timer first; wait for the message itself.
    page.wait_for_function("() => document.querySelector('#doctor-report').innerText.includes('请先填写训练集文件夹')")
    page.locator("#folder textarea, #folder input").first.fill(str(root))
    page.locator("#doctor-run").click()
    page.wait_for_function("() => document.querySelector('#doctor-report').innerText.includes('每轮步数')",
                           timeout=60_000)
    text = page.locator("#doctor-report").inner_text()
    assert "每轮步数（批次 4）: 26" in text
    assert "触发词 'zk'" in text and "gb18030" in text and "处理办法" in text
