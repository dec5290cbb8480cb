"""Expert tab, network types: choosing a network_module shows exactly the fields of that type (LyCORIS algorithm only
for lycoris.kohya, DyLoRA's unit only for networks.dylora, no conv rank or dropout for networks.oft, ...). The lists
are read from the schema (`networks` of each parameter), so a new type-specific field is covered without edits."""

from __future__ import annotations

from playwright.sync_api import expect
from test_ui_expert import open_expert, open_group
from test_ui_expert_sdxl import pick

from trainer.config import all_params, params_by_path

UPDATE_MS = 30_000  # the visibility update is a server round trip; a loaded test machine takes seconds


def test_each_network_type_shows_only_its_own_fields(start_app, page):
    module = params_by_path()["network.network_module"]
    own = [p for p in all_params() if p.networks and not p.planned and "sd15" in p.families]
    assert {p.name for p in own} >= {"lycoris_algo", "dylora_unit", "network_args", "conv_dim"}
    open_expert(page, start_app())
    open_group(page, "network")
    for choice in module.available_choices():
        pick(page, module.path, choice)
        for p in own:
            box = page.locator(f"#box-{p.group}-{p.name}")
            if choice in p.networks:
                expect(box, f"{p.path} with {choice}").to_be_visible(timeout=UPDATE_MS)
            else:
                expect(box, f"{p.path} with {choice}").to_be_hidden(timeout=UPDATE_MS)
