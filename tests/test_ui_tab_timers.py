"""Only the shown tab polls. Gradio starts a tab's timers when the tab is first drawn and, left alone, keeps them
ticking after the user moves on: five run monitors and the Runs list each sent a request (and redrew a hidden
panel) every second or five for the rest of the session. Counted here in a real browser, per poller."""

from __future__ import annotations

import collections
import json

import pytest
from browser_app import running_app
from playwright.sync_api import expect

from tests.fake_runs import finished_run, live_run
from ui.app import build_app

pytestmark = pytest.mark.browser

WINDOW_MS = 3500


def tick_owners(page, url: str) -> dict[int, str]:
    """fn_index -> the element id of the first thing the timer draws ("novice-run-progress", "runs-history", ...),
    read from the page's config."""
    cfg = page.request.get(url + "/config").json()
    elem = {c["id"]: c["props"].get("elem_id") or "" for c in cfg["components"]}
    owners = {}
    for dep in cfg["dependencies"]:
        if any(event == "tick" for _, event in dep["targets"]):
            owners[dep["id"]] = elem[dep["outputs"][0]]
    return owners


def switch_events(page, url: str) -> dict[str, dict]:
    """Tab name ("dataset", ...) -> the event (from the page's config) its select fires to set which timers tick."""
    cfg = page.request.get(url + "/config").json()
    kind = {c["id"]: c["type"] for c in cfg["components"]}
    elem = {c["id"]: c["props"].get("elem_id") or "" for c in cfg["components"]}
    return {elem[t[0]].removeprefix("tab-"): dep for dep in cfg["dependencies"] for t in dep["targets"]
            if t[1] == "select" and dep["outputs"] and all(kind[o] == "timer" for o in dep["outputs"])}


def select_redraw(page, url: str, tab: str, elem_id: str) -> dict:
    """The event a tab's select fires to redraw the panel `elem_id` (the first thing it draws) at once."""
    cfg = page.request.get(url + "/config").json()
    elem = {c["id"]: c["props"].get("elem_id") or "" for c in cfg["components"]}
    return next(dep for dep in cfg["dependencies"] if [t[1] for t in dep["targets"]] == ["select"]
                and elem[dep["targets"][0][0]] == f"tab-{tab}" and dep["outputs"] and elem[dep["outputs"][0]] == elem_id)


def show_tab(page, switch: dict, action, tab: str | None = None) -> None:
    """Do `action` (a click that shows a tab) and wait until the server has answered `switch`, an event of that tab's
    select (its timer switch, a panel's redraw): what happened before that answer came is the page's latency on a
    loaded machine, not what the test asks about. The timer switch is one event for every tab: `tab` names the tab
    whose answer to wait for (an earlier click's may still be on its way)."""
    def answers_switch(response) -> bool:
        data = response.request.post_data
        if response.request.method != "POST" or not data:
            return False
        body = json.loads(data)
        return body.get("fn_index") == switch["id"] and (tab is None or body.get("data") == [tab])

    with page.expect_response(answers_switch, timeout=20000):
        action()


def polls_while_shown(page, owners: dict[int, str], window_ms: int = WINDOW_MS) -> collections.Counter:
    """Which pollers sent requests during one window (after the page has settled on its tab)."""
    page.wait_for_timeout(700)  # a tick sent just before the switch was applied may still be in flight
    seen: collections.Counter = collections.Counter()

    def count(request):
        if request.method == "POST" and request.post_data:
            fn = json.loads(request.post_data).get("fn_index")
            if fn in owners:
                seen[owners[fn]] += 1

    page.on("request", count)
    page.wait_for_timeout(window_ms)
    page.remove_listener("request", count)
    return seen


# Holds the answer to the next request of one event (window.__danluDelayNext = its fn_index) for 2.5 s, as a loaded
# server or a slow link may: the page sees the answers to two quick tab clicks in the other order.
DELAY_ONE_ANSWER = """(() => {
  window.__danluDelayNext = null;
  const send = window.fetch;
  window.fetch = async (input, init) => {
    let fn = null;
    try { fn = JSON.parse(init && init.body).fn_index; } catch (e) { fn = null; }
    const response = await send(input, init);
    if (fn !== null && fn === window.__danluDelayNext) {
      window.__danluDelayNext = null;
      await new Promise((done) => setTimeout(done, 2500));
    }
    return response;
  };
})();"""



def test_only_the_shown_tabs_timers_poll_and_load_settings_moves_them(tmp_path, page):
    ws = tmp_path / "ws"
    with running_app(ws) as url:
        owners, switch = tick_owners(page, url), switch_events(page, url)
        monitors = {f"{key}-progress" for key in ("novice-run", "expert-run", "dreambooth-run", "flux-run", "runs")}
        assert set(owners.values()) == monitors | {"runs-history"}
        page.add_init_script(DELAY_ONE_ANSWER)
        with live_run(ws / "runs", "20260101-100000-000-live"):  # monitors of a training run poll each second
            page.goto(url)
            tab = page.locator("#danlu-tabs")
            expect(page.locator("#novice-run-progress")).to_contain_text("20260101-100000-000-live", timeout=20000)
            assert set(polls_while_shown(page, owners)) == {"novice-run-progress"}  # the first tab, shown on opening
            for name in ("Expert", "Dreambooth", "Runs"):  # each drawn once, so each has started its timers
                tab.get_by_role("tab", name=name).click()
                page.wait_for_timeout(300)
            # Runs, then Expert at once, the answer to the Runs switch arriving last: Expert's monitor polls and the
            # Runs tab's pollers do not (they did: the late answer switched Runs' timers on behind Expert)
            page.evaluate(f"window.__danluDelayNext = {switch['runs']['id']}")
            tab.get_by_role("tab", name="Runs").click()
            show_tab(page, switch["expert"], tab.get_by_role("tab", name="Expert").click, "expert")
            page.wait_for_timeout(3000)  # the held answer has arrived
            assert page.evaluate("window.__danluDelayNext") is None  # it was held
            assert set(polls_while_shown(page, owners)) == {"expert-run-progress"}
            show_tab(page, switch["dataset"], tab.get_by_role("tab", name="Dataset").click, "dataset")
            assert polls_while_shown(page, owners) == {}  # nothing polls behind a tab without a monitor
            show_tab(page, switch["runs"], tab.get_by_role("tab", name="Runs").click, "runs")
            seen = polls_while_shown(page, owners)
            assert set(seen) <= {"runs-progress", "runs-history"} and seen["runs-progress"] >= 2, seen  # list: 5 s
        expect(page.locator("#runs-load")).to_be_visible(timeout=8000)  # the run ended: its settings can be loaded
        show_tab(page, switch["expert"], page.locator("#runs-load").click, "expert")  # the app selects Expert
        expect(page.get_by_role("tab", name="Expert", selected=True)).to_be_visible()
        seen = polls_while_shown(page, owners, 8000)  # an ended run: each 5 s
        assert set(seen) == {"expert-run-progress"}, seen


def test_a_monitor_polls_each_second_during_a_run_and_each_five_seconds_without(tmp_path, page):
    """An open page with no run training, the common case, asks the app five times less often."""
    ws = tmp_path / "ws"
    with running_app(ws) as url:
        finished_run(ws / "runs", "20260101-100000-000-done", "done")
        owners = tick_owners(page, url)
        expert_redraw = select_redraw(page, url, "expert", "expert-run-progress")
        runs_fill = select_redraw(page, url, "runs", "runs-history")
        page.goto(url)
        tab = page.locator("#danlu-tabs")
        tab.get_by_role("tab", name="Expert").click()  # its monitor draws the ended run and slows down, hidden after
        expect(page.locator("#expert-run-progress")).to_contain_text("20260101-100000-000-done")
        tab.get_by_role("tab", name="Novice").click()
        expect(page.locator("#novice-run-progress")).to_contain_text("20260101-100000-000-done")
        idle = polls_while_shown(page, owners, 6000)
        assert set(idle) == {"novice-run-progress"} and idle["novice-run-progress"] <= 2, idle  # 6 at 1 s
        with live_run(ws / "runs", "20260101-110000-000-live"):  # started elsewhere (a CLI, another browser)
            expect(page.locator("#novice-run-progress")).to_contain_text("20260101-110000-000-live", timeout=8000)
            live = polls_while_shown(page, owners, 4000)
            assert live["novice-run-progress"] >= 3, live
            # shown again: drawn at once from its select's answer (however long a loaded machine takes to give it),
            # not at its next 5 s tick
            show_tab(page, expert_redraw, tab.get_by_role("tab", name="Expert").click)
            expect(page.locator("#expert-run-progress")).to_contain_text("20260101-110000-000-live", timeout=1500)
            assert polls_while_shown(page, owners, 3000)["expert-run-progress"] >= 2  # and polled each second
            # its list was filled when the page opened, before the run: filled again when shown
            show_tab(page, runs_fill, tab.get_by_role("tab", name="Runs").click)
            expect(page.locator("#runs-history")).to_contain_text("20260101-110000-000-live", timeout=1500)


def test_a_tab_select_that_fires_late_sets_the_timers_of_the_tab_the_page_shows(tmp_path, page):
    """Gradio fires the first tab's select when the page mounts, and fired it again (with the Runs tab's) well after
    a quick click on Runs: taken at its word, that late Novice select stopped the Runs monitor for good. Each select
    now sends the tab the page shows when it fires, read in the page; the server switches on that tab's timers."""
    with running_app(tmp_path / "ws") as url:
        timer_events = switch_events(page, url)
        assert {"novice", "runs"} <= set(timer_events)
        page.goto(url)
        page.get_by_role("tab", name="Runs").click()
        expect(page.get_by_role("tab", name="Runs")).to_have_attribute("aria-selected", "true")
        late_novice_select = timer_events["novice"]["js"]
        assert page.evaluate(f"({late_novice_select})()") == "runs"
        page.get_by_role("tab", name="Novice").click()
        expect(page.get_by_role("tab", name="Novice")).to_have_attribute("aria-selected", "true")
        assert page.evaluate(f"({timer_events['runs']['js']})()") == "novice"

    demo = build_app(tmp_path / "ws2")
    owned = demo.danlu_ctx.shared["tab_timers"]
    select = next(fn for fn in demo.fns.values() if fn.js and fn.outputs and all(o in [t for _, t in owned]
                                                                                   for o in fn.outputs))
    updates = dict(zip(select.outputs, select.fn("runs"), strict=True))
    assert {owner for owner, timer in owned if updates[timer].active} == {"runs"}

