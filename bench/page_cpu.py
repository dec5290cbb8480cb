"""What an open page costs while a run trains: CPU of the browser (Debian's chromium) and of the app, per state.

    python bench/page_cpu.py [--window 15]

A fake run writes four progress events a second (a fast GPU's rate) into a real app's workspace. The page is
measured on the Dataset tab with no run (the idle floor), on the Dataset tab after the Novice, Expert, Dreambooth
and Runs tabs were drawn (their monitors must not tick while hidden: ui/tab_timers.py), on the Novice tab
watching the run (one monitor, polling each second), and there once the run has ended (polling each 5 s). On a
2-core box the training engine shares the cores with both.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

MONITOR_TABS = ("Expert", "Dreambooth", "Runs")
TARGET = 2.0  # the page on Dataset during a run / with no run: 5.5 when hidden monitors ticked, 0.9-1.4 since


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:  # a renderer chromium closed meanwhile
            pass
    return total


def percent(page, app: psutil.Process, window_s: float) -> dict:
    """Per cent of one core used by chromium (all its processes) and by the app over the window."""
    browser = [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name()]
    c0, a0, t0 = cpu_seconds(browser), cpu_seconds([app]), time.perf_counter()
    page.wait_for_timeout(window_s * 1000)
    dt = time.perf_counter() - t0
    return {"browser": 100 * (cpu_seconds(browser) - c0) / dt, "app": 100 * (cpu_seconds([app]) - a0) / dt}


def measure(window_s: float = 15.0, log=print) -> dict:
    from browser_app import app_process, running_app
    from conftest import CHROMIUM, CHROMIUM_ARGS
    from fake_runs import live_run
    from playwright.sync_api import sync_playwright

    out = {}
    with tempfile.TemporaryDirectory(prefix="danlu-pagecpu-") as tmp, sync_playwright() as pw:
        ws = Path(tmp) / "ws"
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        with running_app(ws) as url:
            app = app_process(int(url.rsplit(":", 1)[1]))
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            tabs = page.locator("#danlu-tabs")
            tabs.get_by_role("tab", name="Dataset").click()
            page.wait_for_timeout(5000)  # the app settles after its first page (app CPU)
            out["idle"] = percent(page, app, window_s)
            log(f"page on Dataset, no run: {out['idle']}")
            with live_run(ws / "runs"):
                for name in (*MONITOR_TABS, "Dataset"):  # each monitor drawn once, then left
                    tabs.get_by_role("tab", name=name).click()
                    page.wait_for_timeout(2000)
                out["hidden"] = percent(page, app, window_s)
                log(f"page on Dataset, run live, monitors drawn and hidden: {out['hidden']}")
                tabs.get_by_role("tab", name="Novice").click()
                page.wait_for_timeout(2000)
                out["watching"] = percent(page, app, window_s)
                log(f"page on Novice watching the run: {out['watching']}")
            page.wait_for_timeout(2000)  # the panel sees the run end
            out["ended"] = percent(page, app, window_s)
            log(f"page on Novice, the run ended: {out['ended']}")
        browser.close()
    out["hidden_over_idle"] = out["hidden"]["browser"] / max(out["idle"]["browser"], 0.1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--window", type=float, default=15.0, help="seconds measured in each state")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    r = measure(args.window)
    print(f"browser on Dataset during a run / with no run: {r['hidden_over_idle']:.2f} (target <= {TARGET})")
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
