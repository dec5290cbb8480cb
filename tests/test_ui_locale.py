"""`--lang zh` also puts Gradio's own strings (upload area, footer) in Chinese, whatever the browser's
language (issue 10.13); `--lang en` keeps them English in a Chinese browser."""

from __future__ import annotations

import pytest
from browser_app import running_app
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("lang", "browser_locale", "footer", "drop"), [
    ("zh", "en-US", "使用 Gradio 构建", "将文件拖放到此处"),
    ("en", "zh-CN", "Built with Gradio", "Drop File Here"),
])
def test_gradio_strings_follow_the_ui_language(tmp_path, browser, lang, browser_locale, footer, drop):
    context = browser.new_context(locale=browser_locale, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        with running_app(tmp_path / "ws", lang=lang) as url:
            page.goto(url)
            expect(page.locator("footer")).to_contain_text(footer)
            page.get_by_role("tab", name="专家模式" if lang == "zh" else "Expert").click()
            expect(page.locator("#expert-upload")).to_contain_text(drop)
    finally:
        context.close()
