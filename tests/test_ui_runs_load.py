"""The Runs tab on page load (issue 10.7): table, picker and config view are filled without pressing Refresh."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from browser_app import running_app
from playwright.sync_api import expect

from tests.conftest import ROOT, screenshot
from tests.fake_runs import finished_run, stopped_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app for the module's tests: (URL, workspace)."""
    ws = tmp_path_factory.mktemp("runs-load") / "ws"
    with running_app(ws) as url:
        yield url, ws


def later_run_id(runs: Path, name: str) -> str:
    """A run id that sorts after every run already in `runs` (the app lists runs newest first by id, and picks
    the newest on page load), so each test's own run is the newest, whichever test ran before it."""
    n = sum(1 for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else 0
    return f"20260101-{10 + n:02d}0000-000-{name}"


def _shown_fill(page, url: str) -> int:
    """fn_index of the event that fills the Runs list when its tab is shown (the tab's select, writing the list)."""
    cfg = page.request.get(url + "/config").json()
    elem = {c["id"]: c["props"].get("elem_id") for c in cfg["components"]}
    return next(dep["id"] for dep in cfg["dependencies"]
                if ["select"] == [t[1] for t in dep["targets"]] and elem[dep["targets"][0][0]] == "tab-runs"
                and "runs-history" in [elem.get(o) for o in dep["outputs"]])


def _answers(response, fn_index: int) -> bool:
    data = response.request.post_data
    return response.request.method == "POST" and bool(data) and json.loads(data).get("fn_index") == fn_index


def test_runs_tab_is_filled_on_page_load(app, page):
    url, ws = app
    # made after the app was built, as every run of a session is
    older = later_run_id(ws / "runs", "older")
    finished_run(ws / "runs", older, "older")
    newest = later_run_id(ws / "runs", "newest")
    finished_run(ws / "runs", newest, "newest")
    fill = _shown_fill(page, url)
    page.goto(url)
    with page.expect_response(lambda r: _answers(r, fill), timeout=20000):
        page.get_by_role("tab", name="Runs").click()  # on a loaded machine the answer may take seconds
    table = page.locator("#runs-history")
    expect(table).to_contain_text(newest, timeout=1500)  # drawn from that answer, not the 5 s refresh timer
    expect(table).to_contain_text(older, timeout=1000)
    expect(page.locator("#runs-select input")).to_have_value(newest, timeout=10000)  # a chained event: no race
    expect(page.locator("#runs-config")).to_contain_text('output_name = "newest"', timeout=10000)
    # The config (about 200 lines) scrolls in a box of its own instead of pushing the queue 3,000 px down.
    height = page.locator("#runs-config").evaluate("e => e.getBoundingClientRect().height")
    assert height < 700, f"config view {height} px tall"


def test_loss_chart_and_log_of_a_short_run(app, page):
    """Issue 10.11: no empty "series" legend, whole-number step ticks on a 6-step run, the log shows its end."""
    url, ws = app
    run_dir = ws / "runs" / later_run_id(ws / "runs", "short")
    finished_run(ws / "runs", run_dir.name, "short")
    (run_dir / "train.log").write_text("".join(f"log line {i}\n" for i in range(1, 41)), encoding="utf-8")
    page.goto(url)
    page.get_by_role("tab", name="Runs").click()
    expect(page.locator("#runs-log textarea")).to_have_value(re.compile("log line 40"))
    chart = page.locator("#runs-loss")
    chart.locator("svg, canvas").first.wait_for()
    page.wait_for_timeout(1500)
    labels = page.evaluate("() => [...document.querySelectorAll('#runs-loss svg text')]"
                           ".map(e => e.textContent.trim())")
    screenshot(page, "runs-short-run")
    ticks = [x for x in labels if re.fullmatch(r"-?[\d.,]+", x)]
    assert ticks, labels
    assert "series" not in labels, labels  # no legend title; the legend and the caption name the curves
    expect(chart).to_contain_text("moving average")
    # The legend and the caption naming the curves lie inside the chart's box (a fixed height cut both off).
    clipped = page.evaluate("""() => { const box = document.querySelector('#runs-loss').getBoundingClientRect();
        return [...document.querySelectorAll('#runs-loss *')]
            .filter(e => e.children.length === 0 && e.textContent.trim())
            .filter(e => { const r = e.getBoundingClientRect(); return r.height && r.bottom > box.bottom + 1; })
            .map(e => e.textContent.trim()); }""")
    assert not clipped, f"cut off below the loss chart's box: {clipped}"
    x_ticks = [x for x in ticks if "." in x]
    assert not [x for x in x_ticks if float(x) > 1], f"fractional step ticks: {labels}"
    # The page scrolls the box after it renders; wait for that (it never happens without the fix).
    page.wait_for_function("() => { const t = document.querySelector('#runs-log textarea');"
                           " return t.scrollHeight > t.clientHeight"
                           " && t.scrollTop + t.clientHeight >= t.scrollHeight - 4; }", timeout=15000)


def test_monitor_buttons_stand_out_from_the_panel(app, page):
    """The "load settings" button of a finished run is drawn as a button: its fill differs from what lies behind
    it (inside the panel's group it took the group's grey and read as a heading)."""
    url, ws = app
    finished_run(ws / "runs", later_run_id(ws / "runs", "buttons"), "buttons")
    page.goto(url)
    page.get_by_role("tab", name="Runs").click()
    button = page.locator("#runs-load")
    expect(button).to_be_visible(timeout=5000)
    fills = button.evaluate("""b => { const fill = e => getComputedStyle(e).backgroundColor;
        const opaque = c => c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent';
        let e = b.parentElement; while (e && !opaque(fill(e))) e = e.parentElement;
        return [fill(b), e ? fill(e) : 'rgb(255, 255, 255)']; }""")
    assert fills[0] != fills[1], f"button fill {fills[0]} is the fill behind it"


def test_output_files_have_no_heavy_frame(app, page):
    """The list of a run's files sits in the panel like its other parts: Gradio drew it inside the panel's group
    with a 3 px frame in the text colour (its inline border-style beat the group's "border: none"), which read as
    an error or a focus mark."""
    url, ws = app
    finished_run(ws / "runs", later_run_id(ws / "runs", "framed"), "framed", with_file=True)
    page.goto(url)
    page.get_by_role("tab", name="Runs").click()
    files = page.locator("#runs-outputs")
    expect(files).to_contain_text("8.0 B", timeout=10000)
    width = files.evaluate("e => Math.max(...['Top', 'Right', 'Bottom', 'Left'].map("
                           "s => parseFloat(getComputedStyle(e)[`border${s}Width`])))")
    assert width <= 1, f"a {width}px frame around the output files"


def test_a_stopped_run_continues_from_its_saved_state(app, page):
    """Stop saves the LoRA and the training state; the panel then offers to continue from that step, which queues
    the same settings with save.resume at the state (before, the state path had to be typed into Expert's form).
    A finished run offers nothing to continue."""
    from trainer.config import load_config
    from trainer.models.demo import DEMO_NAME

    url, ws = app
    runs = ws / "runs"
    finished_run(runs, later_run_id(runs, "done"), "done")
    page.goto(url)
    page.get_by_role("tab", name="Runs").click()
    expect(page.locator("#runs-progress")).to_contain_text("done", timeout=10000)
    expect(page.locator("#runs-resume")).to_be_hidden()
    state = stopped_run(runs, later_run_id(runs, "halfway"), "halfway", ws / "models" / DEMO_NAME,
                        ROOT / "assets" / "demo_dataset", step=7)
    before = {p.name for p in runs.iterdir()}
    page.reload()
    page.get_by_role("tab", name="Runs").click()
    button = page.locator("#runs-resume")
    expect(button).to_have_text("Continue from step 7", timeout=10000)
    button.click()
    deadline = time.time() + 20
    # (the run's folder is made a moment before its config.toml is written in it)
    while time.time() < deadline and not {p.parent.name for p in runs.glob("*/config.toml")} - before:
        time.sleep(0.2)
    new = {p.parent.name for p in runs.glob("*/config.toml")} - before
    assert len(new) == 1, new
    new = new.pop()
    cfg = load_config(runs / new / "config.toml")
    assert cfg.save.resume == str(state) and cfg.save.output_name == "halfway"
    expect(page.locator("#runs-progress")).to_contain_text(new, timeout=10000)  # the panel follows the new run
    # Its settings loaded into Expert are for a new run: the state belongs to the run that saved it (a run started
    # from them would quietly continue at step 7 again), so save.resume comes empty, and the page says so.
    expect(page.locator("#runs-load")).to_be_visible(timeout=60000)  # (the stand-in state fails the run)
    page.locator("#runs-load").click()
    expect(page.get_by_text("save.resume", exact=False).first).to_be_visible(timeout=10000)
    page.locator("#group-save > button").first.click()  # the section holding both fields
    expect(page.locator("#field-save-output_name textarea, #field-save-output_name input").first).to_have_value(
        "halfway", timeout=10000)
    assert page.locator("#field-save-resume input, #field-save-resume textarea").first.input_value() == ""
