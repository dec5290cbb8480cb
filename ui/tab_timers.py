"""Timers that tick only while their tab is shown.

Gradio starts a tab's timers when the tab is first drawn and keeps them ticking after the user moves on: with
the five run monitors and the Runs list visited, a page sent five polls a second (and redrew hidden panels) for
the rest of its life. Here a timer belongs to the tab being built, and selecting a tab switches every owned
timer on or off (its interval is left as its own ticks set it). A tab selected by the app (gr.Tabs(selected=...),
e.g. "load settings") fires the same select event in the page: tests/test_ui_tab_timers.py checks that path.
`tab_shown` gives a panel that event, to redraw at once when shown instead of at its next tick; `on_shown` fills
a panel only when its tab is shown, not on every page load: each event a page load runs redraws the loading
state of every component on the page (about 0.2 s each in chromium on a 2-core machine).
"""

from __future__ import annotations

import gradio as gr


def tab_timer(ctx, seconds: float) -> gr.Timer:
    """A gr.Timer that ticks while the tab now being built is selected (always, outside any tab)."""
    owner = ctx.shared.get("building_tab")
    if owner is None:
        return gr.Timer(seconds)
    timer = gr.Timer(seconds, active=owner == ctx.shared["first_tab"])  # the page opens on the first tab
    ctx.shared.setdefault("tab_timers", []).append((owner, timer))
    return timer


def tab_shown(ctx) -> gr.Tab | None:
    """The tab now being built (None outside tabs): its select event is when a panel in it is shown again."""
    owner = ctx.shared.get("building_tab")
    return None if owner is None else ctx.shared["tab_items"][owner]


def on_shown(ctx, fn, inputs, outputs, triggers=(), **kwargs) -> None:
    """Run `fn` when the tab now being built is shown: its select event, and the page load when the page opens on
    it (or when built outside any tab); `triggers` are more events that run it."""
    tab = tab_shown(ctx)
    opens_on_it = tab is None or ctx.shared["building_tab"] == ctx.shared["first_tab"]
    shown = ([tab.select] if tab else []) + ([ctx.shared["blocks"].load] if opens_on_it else [])
    gr.on([*triggers, *shown], fn, inputs, outputs, **kwargs)


# The tab the page shows, read in the page when a select event fires (after the page's update settles). Gradio also
# fires the first tab's select when the page mounts, and on a slow load that event can come after a tab the user
# clicked at once: taken at its word it stopped the shown tab's timers (its monitor never updated again).
def _shown_tab_js(default: str) -> str:
    """JS giving the shown tab's name (the `tab-<name>` panel its button controls), else `default`."""
    return f"""async () => {{
  await new Promise((done) => setTimeout(done, 0));
  const button = document.querySelector('#danlu-tabs [role=tab][aria-selected=true]');
  const panel = button && button.getAttribute('aria-controls');
  return panel && panel.startsWith('tab-') ? panel.slice(4) : {default!r};
}}"""


def wire_tab_timers(ctx) -> None:
    """Called once every tab exists: selecting any tab sets which timers tick (those of the tab now shown).

    One event for every tab's select, so its answers apply in order: the page sends the next only when the last has
    been answered, and of the clicks made meanwhile only the newest (trigger_mode "always_last"). With an event per
    tab, the answers to two quick clicks could arrive swapped and leave the first tab's timers ticking."""
    owned = ctx.shared.get("tab_timers", [])
    if not owned:
        return
    timers = [timer for _, timer in owned]
    shown = gr.Textbox(visible=False, elem_id="shown-tab")  # carries what _shown_tab_js read to the server
    gr.on([item.select for item in ctx.shared["tab_items"].values()],
          lambda tab: [gr.Timer(active=owner == tab) for owner, _ in owned], shown, timers,
          js=_shown_tab_js(ctx.shared["first_tab"]), queue=False, show_progress="hidden", trigger_mode="always_last")
