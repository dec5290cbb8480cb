"""Opening the page: seconds from navigation to the Novice plan drawn, and how many events the page runs meanwhile.

    python bench/page_load.py [--rounds 6] [--before DIR]

The app runs on a workspace that holds the demo model; one chromium opens the page `--rounds` times. Each event a
page load runs costs a redraw of the loading state of every component on the page, so the count matters as much
as the server's time. `--before DIR` (another checkout, e.g. `git worktree add /tmp/before HEAD~1`) serves a
second app from that tree and alternates the two, so both are measured under the same load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

PLAN_DRAWN = "#novice-plan :text('steps in total')"


def open_once(page, url: str) -> tuple[float, int]:
    """(seconds to the drawn plan, events the page ran until 1 s after it)."""
    events: list[int] = []

    def count(request):
        if request.method == "POST" and request.post_data and "fn_index" in request.post_data:
            events.append(json.loads(request.post_data)["fn_index"])

    page.on("request", count)
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(PLAN_DRAWN)
    took = time.perf_counter() - start
    page.wait_for_timeout(1000)
    page.remove_listener("request", count)
    return took, len(events)


def main(argv: list[str] | None = None) -> int:
    from browser_app import running_app
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--before", type=Path, help="another checkout to measure beside this one")
    args = ap.parse_args(argv)
    trees = {"this tree": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    workspace = Path(tempfile.mkdtemp()) / "ws"
    times: dict[str, list[float]] = {name: [] for name in trees}
    counts: dict[str, list[int]] = {name: [] for name in trees}
    with contextlib.ExitStack() as stack:  # both apps serve the same workspace until the rounds are done
        urls = {name: stack.enter_context(running_app(workspace, root=root)) for name, root in trees.items()}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page()
            for url in urls.values():  # warm: the browser's cache of Gradio's scripts
                open_once(page, url)
            for r in range(args.rounds):
                for name in trees if r % 2 == 0 else list(trees)[::-1]:
                    took, n = open_once(page, urls[name])
                    times[name].append(took)
                    counts[name].append(n)
            browser.close()
    for name in trees:
        print(f"{name:10s} median {statistics.median(times[name]):5.2f} s to the drawn plan, "
              f"{statistics.median(counts[name]):.0f} events a load ({' '.join(f'{t:.2f}' for t in times[name])})")
    if args.before:
        print(f"this tree / before: {statistics.median(times['this tree']) / statistics.median(times['before']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
