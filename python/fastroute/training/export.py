"""Writes a linear router (weights over raw features + bias) as a small ONNX graph.

Pure: builds bytes, never touches files. The graph is MatMul -> Add -> Sigmoid with two outputs, `score`
(P(strong needed)) and `logit`, so the scorer can recover the linear map exactly for its fast path.
"""

from __future__ import annotations

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "features"
SCORE_OUTPUT = "score"
LOGIT_OUTPUT = "logit"
OPSET = 13
IR_VERSION = 8


def linear_model_onnx(weights: NDArray[np.floating], bias: float, *, doc: str = "") -> bytes:
    """ONNX bytes computing `sigmoid(features @ weights + bias)` for a batch `features` of shape (N, D)."""
    w = np.asarray(weights, dtype=np.float32).reshape(-1, 1)
    dim = w.shape[0]
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], [LOGIT_OUTPUT]),
        helper.make_node("Sigmoid", [LOGIT_OUTPUT], [SCORE_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "complexity_router",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", dim])],
        [
            helper.make_tensor_value_info(SCORE_OUTPUT, TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info(LOGIT_OUTPUT, TensorProto.FLOAT, ["N", 1]),
        ],
        initializer=[
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(np.asarray([bias], dtype=np.float32), "B"),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="fastroute.training",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
