"""An onnxruntime session for one tagger model, with the facts the pipeline needs read from the model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.tagger.models import (
    MODEL_FILE,
    TAGS_FILE,
    Labels,
    choose_providers,
    local_model_files,
    read_labels,
)


@dataclass
class TaggerModel:
    session: object  # onnxruntime.InferenceSession
    labels: Labels
    size: int  # square input side, read from the model (448 for the WD taggers)
    fixed_batch: int | None  # an int when the export is fixed at that batch size (several v2 models: 1)
    provider: str  # the provider that actually runs the model
    warning: str = ""  # set when a GPU provider was asked for but onnxruntime fell back to CPU

    @property
    def input_name(self) -> str:
        return self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities [n, tags] for a BGR float32 NHWC batch."""
        return self.session.run(None, {self.input_name: batch})[0]

    def describe(self) -> str:
        text = self.provider.removesuffix("ExecutionProvider")
        return f"{text} ({self.warning})" if self.warning else text


def load_model(folder: str | Path, provider: str = "auto", threads: int = 0) -> TaggerModel:
    """Open `folder`'s model.onnx on the best provider and check it against selected_tags.csv."""
    import onnxruntime as ort

    model_path, tags_path = local_model_files(folder)
    labels = read_labels(tags_path)
    wanted = choose_providers(provider)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model_path), sess_options=options, providers=wanted)
    size, fixed = _input_geometry(session, model_path)
    _check_outputs(session, labels, model_path, tags_path)
    actual = session.get_providers()[0]
    warning = ""
    if actual != wanted[0]:
        # The top "it is slow" report: a GPU provider failed to load and CPU took over without a word.
        warning = f"{wanted[0].removesuffix('ExecutionProvider')} failed to load, running on CPU"
    return TaggerModel(session, labels, size, fixed, actual, warning)


def _input_geometry(session, model_path: Path) -> tuple[int, int | None]:
    inputs = session.get_inputs()
    shape = inputs[0].shape if inputs else []
    if len(inputs) != 1 or len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"{model_path}: expected one NHWC image input [batch, size, size, 3], got {shape}")
    height, width = shape[1], shape[2]
    if not isinstance(height, int) or height != width:
        raise ValueError(f"{model_path}: input must be a fixed square size, got {height}x{width}")
    fixed = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    return height, fixed


def _check_outputs(session, labels: Labels, model_path: Path, tags_path: Path) -> None:
    shape = session.get_outputs()[0].shape
    count = shape[-1] if shape else None
    if isinstance(count, int) and count != len(labels.names):
        raise ValueError(
            f"{model_path.name} predicts {count} tags but {tags_path} lists {len(labels.names)}; "
            f"use the {TAGS_FILE} that came with this {MODEL_FILE}"
        )
