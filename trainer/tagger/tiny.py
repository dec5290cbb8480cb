"""A tiny WD-tagger-shaped ONNX model, built offline, for tests and demos.

Same interface as the real taggers (NHWC BGR float input, sigmoid probabilities out, selected_tags.csv),
but the "network" is sigmoid(mean colour / 255 @ weights + bias), so tests can compute expected outputs.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from trainer.tagger.models import CHARACTER, GENERAL, MODEL_FILE, RATING, TAGS_FILE
from trainer.textio import atomic_write_bytes, atomic_write_text

DEFAULT_TAGS = [
    ("general", RATING), ("sensitive", RATING), ("questionable", RATING), ("explicit", RATING),
    ("1girl", GENERAL), ("long_hair", GENERAL), ("red_background", GENERAL), (">_<", GENERAL),
    ("smile", GENERAL), ("hatsune_miku", CHARACTER), ("kagamine_rin", CHARACTER),
]


def tags_csv(tags: list[tuple[str, int]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["tag_id", "name", "category", "count"])
    for i, (name, category) in enumerate(tags):
        writer.writerow([1000 + i, name, category, 100 * (len(tags) - i)])
    return out.getvalue()


def tiny_probs(bgr_mean: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """What the tiny model computes from the per-image mean BGR colour (float 0..255), shape [n, tags]."""
    logits = (np.asarray(bgr_mean, np.float64) / 255.0) @ weights + bias
    return 1.0 / (1.0 + np.exp(-logits))


def build_tiny_tagger(
    folder: str | Path,
    tags: list[tuple[str, int]] | None = None,
    size: int = 32,
    batch: int | None = None,
    weights: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Write model.onnx and selected_tags.csv into `folder`; returns (weights [3, T], bias [T])."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tags = tags or DEFAULT_TAGS
    rng = np.random.default_rng(seed)
    weights = np.asarray(weights if weights is not None else rng.normal(0, 3, (3, len(tags))), np.float32)
    bias = np.asarray(bias if bias is not None else rng.normal(0, 1, len(tags)), np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2], keepdims=0),
        helper.make_node("Mul", ["mean", "inv255"], ["scaled"]),
        helper.make_node("Gemm", ["scaled", "weights", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_wd_tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch or "batch", size, size, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch or "batch", len(tags)])],
        initializer=[
            numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255"),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder = Path(folder)
    atomic_write_bytes(folder / MODEL_FILE, model.SerializeToString())
    atomic_write_text(folder / TAGS_FILE, tags_csv(tags))
    return weights, bias
