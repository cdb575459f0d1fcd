"""Writes a linear router (weights over raw features [+ over the n-gram vector] + bias) as a small ONNX graph.

Pure: builds bytes, never touches files. The graph is [Max -> Min ->] MatMul -> Add -> Sigmoid with two outputs,
`score` (P(strong needed)) and `logit`, so the scorer can recover the map exactly for its fast path. The
optional Max/Min pair clips each feature to the training range (`low`, `high`) before the linear map. With
n-gram weights the graph takes a second input `ngrams` (N, NGRAM_BUCKETS), adds `ngrams @ V` to the logit, and
exposes the table itself as a third output `ngram_weights` (Identity of V), so the scorer reads the exact
shipped weights through onnxruntime instead of probing 16,384 axes.
"""

from __future__ import annotations

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "features"
NGRAM_INPUT = "ngrams"
NGRAM_WEIGHTS_OUTPUT = "ngram_weights"
SCORE_OUTPUT = "score"
LOGIT_OUTPUT = "logit"
OPSET = 13
IR_VERSION = 8


def linear_model_onnx(
    weights: NDArray[np.floating],
    bias: float,
    *,
    low: NDArray[np.floating] | None = None,
    high: NDArray[np.floating] | None = None,
    ngram_weights: NDArray[np.floating] | None = None,
    doc: str = "",
) -> bytes:
    """ONNX bytes computing `sigmoid(clip(features, low, high) @ weights [+ ngrams @ ngram_weights] + bias)`.

    `features` is a batch of shape (N, D). Without `low`/`high` there is no clipping (both or neither must be
    given); without `ngram_weights` there is no `ngrams` input.
    """
    w = np.asarray(weights, dtype=np.float32).reshape(-1, 1)
    dim = w.shape[0]
    if (low is None) != (high is None):
        raise ValueError("give both clip bounds or neither")
    initializers = [
        numpy_helper.from_array(w, "W"),
        numpy_helper.from_array(np.asarray([bias], dtype=np.float32), "B"),
    ]
    nodes = []
    matmul_input = INPUT_NAME
    if low is not None and high is not None:
        lo = np.asarray(low, dtype=np.float32).reshape(1, dim)
        hi = np.asarray(high, dtype=np.float32).reshape(1, dim)
        if np.any(lo > hi):
            raise ValueError("clip bounds must satisfy low <= high")
        initializers += [numpy_helper.from_array(lo, "L"), numpy_helper.from_array(hi, "H")]
        nodes += [
            helper.make_node("Max", [INPUT_NAME, "L"], ["above_low"]),
            helper.make_node("Min", ["above_low", "H"], ["clipped"]),
        ]
        matmul_input = "clipped"
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", dim])]
    outputs = [
        helper.make_tensor_value_info(SCORE_OUTPUT, TensorProto.FLOAT, ["N", 1]),
        helper.make_tensor_value_info(LOGIT_OUTPUT, TensorProto.FLOAT, ["N", 1]),
    ]
    nodes.append(helper.make_node("MatMul", [matmul_input, "W"], ["xw"]))
    linear = "xw"
    if ngram_weights is not None:
        v = np.asarray(ngram_weights, dtype=np.float32).reshape(-1, 1)
        initializers.append(numpy_helper.from_array(v, "V"))
        inputs.append(helper.make_tensor_value_info(NGRAM_INPUT, TensorProto.FLOAT, ["N", v.shape[0]]))
        outputs.append(helper.make_tensor_value_info(NGRAM_WEIGHTS_OUTPUT, TensorProto.FLOAT, [v.shape[0], 1]))
        nodes += [
            helper.make_node("MatMul", [NGRAM_INPUT, "V"], ["nv"]),
            helper.make_node("Add", ["xw", "nv"], ["xw_nv"]),
            helper.make_node("Identity", ["V"], [NGRAM_WEIGHTS_OUTPUT]),
        ]
        linear = "xw_nv"
    nodes += [
        helper.make_node("Add", [linear, "B"], [LOGIT_OUTPUT]),
        helper.make_node("Sigmoid", [LOGIT_OUTPUT], [SCORE_OUTPUT]),
    ]
    graph = helper.make_graph(nodes, "complexity_router", inputs, outputs, initializer=initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="fastroute.training",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
