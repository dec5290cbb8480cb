"""Only the shown tab polls. Gradio starts a tab's timers when the tab is first drawn and, left alone, keeps them
ticking after the user moves on: five run monitors and the Runs list each sent a request (and redrew a hidden
panel) every second or five for the rest of the session. Counted here in a real browser, per poller."""

from __future__ import annotations

import collections
import json

import pytest
from browser_app import running_app
from playwright.sync_api import expect

from tests.test_ui_runs_load import finished_run

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


def polls_while_shown(page, owners: dict[int, str]) -> collections.Counter:
    """Which pollers sent requests during one window (after the page has settled on its tab)."""
    page.wait_for_timeout(700)  # a tick answered just before the switch may still be in flight
    seen: collections.Counter = collections.Counter()

    def count(request):
        if request.method == "POST" and request.post_data:
            fn = json.loads(request.post_data).get("fn_index")
            if fn in owners:
                seen[owners[fn]] += 1

    page.on("request", count)
    page.wait_for_timeout(WINDOW_MS)
    page.remove_listener("request", count)
    return seen


def test_only_the_shown_tabs_timers_poll_and_load_settings_moves_them(tmp_path, page):
    ws = tmp_path / "ws"
    with running_app(ws) as url:
        finished_run(ws / "runs", "20260101-100000-000-done", "done")
        owners = tick_owners(page, url)
        monitors = {f"{key}-progress" for key in ("novice-run", "expert-run", "dreambooth-run", "flux-run", "runs")}
        assert set(owners.values()) == monitors | {"runs-history"}
        page.goto(url)
        tab = page.locator("#danlu-tabs")
        tab.get_by_role("tab", name="Dataset").wait_for()
        assert set(polls_while_shown(page, owners)) == {"novice-run-progress"}  # the first tab, shown on opening
        for name in ("Expert", "Dreambooth", "Runs"):  # each drawn once, so each has started its timers
            tab.get_by_role("tab", name=name).click()
            page.wait_for_timeout(300)
        tab.get_by_role("tab", name="Dataset").click()
        assert polls_while_shown(page, owners) == {}  # nothing polls behind a tab without a monitor
        tab.get_by_role("tab", name="Runs").click()
        expect(page.locator("#runs-load")).to_be_visible()  # the monitor drew the finished run again
        seen = polls_while_shown(page, owners)
        assert set(seen) <= {"runs-progress", "runs-history"} and seen["runs-progress"] >= 2, seen  # history: every 5 s
        page.locator("#runs-load").click()  # the app, not the user, selects the Expert tab
        expect(page.get_by_role("tab", name="Expert", selected=True)).to_be_visible()
        seen = polls_while_shown(page, owners)
        assert set(seen) == {"expert-run-progress"} and seen["expert-run-progress"] >= 2, seen
