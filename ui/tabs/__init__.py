"""The page's tabs, in the order they appear.

Each tab is a module here with `TITLE` (an i18n key), `available() -> bool` (False hides a tab whose
engine path does not exist yet) and `build(ctx: AppContext) -> None`, called inside its `gr.Tab`.
"""

TAB_ORDER = ["novice", "expert", "dreambooth", "flux", "dataset", "tagger", "tag_editor", "compare", "tensorboard", "runs"]
