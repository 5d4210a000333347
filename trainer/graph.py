"""ONNX graph rewrites for serving speed: the same function, computed in a form onnxruntime's CPU kernels run fast.

:func:`fuse_softmax_expectation` — the colorizers' classification head (Zhang, Isola & Efros 2016, "Colorful
Image Colorization", eq. 5: the annealed mean ``ab = sum_q softmax(z / T)_q * ab_q``) is exported by PyTorch as
``Softmax(axis=1)`` over the Q ab bins of an NCHW tensor followed by a 1 x 1 ``Conv`` whose weights are the bin
centres. onnxruntime (1.30, CPU) runs a softmax over a non-last axis by transposing to NHWC and back: at 256² it
took 43 of the 89 ms of ``colorize-pono``'s pass (issue 32, ORT profiler). The rewrite computes the same
expectation without normalizing the Q-vector first::

    m   = ReduceMax(x, axes=[1], keepdims=1)               # B x 1 x H x W, numerical stability
    e   = Exp(x - m)                                       # B x Q x H x W, in (0, 1]
    y   = Conv(e, [W; 1])                                  # B x (K + 1) x H x W: sum_q e_q W_kq and sum_q e_q
    out = Slice(y, 0:K) / Slice(y, K:K+1) (+ bias)         # = softmax(x) * W (+ bias), B x K x H x W

``sum_q e_q >= 1`` (the arg-max term is exp(0)), so the division is safe. Float32 results agree with the original
graph to ~1e-7 (the order of additions differs); every model's parity fixture checks the rewritten file at 1e-4 and
the Node tests check the explain graph's first output against model.onnx at 1e-6.

:func:`bicubic_resize_as_conv` — the upscaler's global residual (a bicubic x4 of the input, Keys' cubic
convolution with a = -0.75, half-pixel centres, edge-clamped taps: PyTorch's ``F.interpolate(mode="bicubic")``)
is exported as a cubic ``Resize``, which onnxruntime's CPU kernel runs slowly (11.8 of 22.6 ms for a 64² input,
issue 32's profile). For an integer scale s every output pixel is one of s² phases, each a fixed 5 x 5 filter of
the input (the four cubic taps of each axis land on offsets -2..2), so the same function is::

    p   = Pad(x, mode=edge, 2 px each side)               # B x C x (H+4) x (W+4): the clamped taps
    y   = Conv(p, K, group=C)                             # B x (C s²) x H x W, K[c s² + ry s + rx] = k_ry ⊗ k_rx
    out = DepthToSpace(y, blocksize=s, mode=CRD)          # B x C x sH x sW

:func:`optimize_main` — ``python3 -m trainer onnx optimize models/NAME``: applies the rewrites to a committed
``model.onnx`` in place, updates the manifest (``onnx.sha256``, ``onnx.bytes``, ``onnx.rewrites``; ``--version``
sets a new version) and re-derives ``explain.onnx`` from the new graph when the model has one
(:mod:`trainer.explain`). :func:`trainer.export.export_onnx` applies the same rewrites to every new export.
"""
from __future__ import annotations

import json
import os
from argparse import Namespace

import numpy as np

#: Names recorded in a manifest's ``onnx.rewrites`` for :func:`fuse_softmax_expectation` and
#: :func:`bicubic_resize_as_conv`.
SOFTMAX_EXPECTATION = "softmax-expectation"
BICUBIC_AS_CONV = "bicubic-as-conv"


def _attr(node, name: str, default=None):
    import onnx
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def fuse_softmax_expectation(model) -> int:
    """Rewrite each ``Softmax(axis=1) -> Conv(1 x 1)`` pair of ``model`` (an ``onnx.ModelProto``, changed in place)
    as ReduceMax / Exp / one Conv with a row of ones / Div (module docstring). A pair qualifies when the softmax
    output feeds only that Conv, the Conv has a 1 x 1 kernel, group 1, stride 1, no padding, and its weight (and
    bias, if any) are initializers. Returns the number of pairs rewritten (0 leaves the model unchanged).

    Raises:
        ValueError: when the model's opset is 18 or later (ReduceMax takes ``axes`` as an input there; this
            rewrite writes the opset-13 attribute form).
    """
    import onnx
    from onnx import helper, numpy_helper
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset >= 18:
        raise ValueError(f"fuse_softmax_expectation: opset {opset} is not supported (ReduceMax axes attribute)")
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in g.output}
    done = 0
    for sm in [n for n in g.node if n.op_type == "Softmax"]:
        axis = _attr(sm, "axis", -1)
        users = consumers.get(sm.output[0], [])
        if axis != 1 or len(users) != 1 or sm.output[0] in graph_outputs:
            continue
        conv = users[0]
        if conv.op_type != "Conv" or conv.input[0] != sm.output[0] or conv.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[conv.input[1]])
        if (w.ndim != 4 or w.shape[2:] != (1, 1) or _attr(conv, "group", 1) != 1
                or any(s != 1 for s in _attr(conv, "strides", [1, 1])) or any(p != 0 for p in _attr(conv, "pads", [0, 0, 0, 0]))
                or any(d != 1 for d in _attr(conv, "dilations", [1, 1]))):
            continue
        bias = None
        if len(conv.input) > 2 and conv.input[2]:
            if conv.input[2] not in inits:
                continue
            bias = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float32)
        k, q = w.shape[0], w.shape[1]
        p = f"{sm.name or 'softmax'}/expectation"
        names = {s: f"{p}/{s}" for s in ("max", "sub", "exp", "w", "y", "num", "den", "ratio", "s0", "sK", "sK1", "ax", "b")}
        new_inits = [numpy_helper.from_array(np.concatenate([w.astype(np.float32), np.ones((1, q, 1, 1), np.float32)]), names["w"]),
                     numpy_helper.from_array(np.array([0], np.int64), names["s0"]),
                     numpy_helper.from_array(np.array([k], np.int64), names["sK"]),
                     numpy_helper.from_array(np.array([k + 1], np.int64), names["sK1"]),
                     numpy_helper.from_array(np.array([1], np.int64), names["ax"])]
        out = conv.output[0]
        nodes = [helper.make_node("ReduceMax", [sm.input[0]], [names["max"]], name=f"{p}/ReduceMax", axes=[1], keepdims=1),
                 helper.make_node("Sub", [sm.input[0], names["max"]], [names["sub"]], name=f"{p}/Sub"),
                 helper.make_node("Exp", [names["sub"]], [names["exp"]], name=f"{p}/Exp"),
                 helper.make_node("Conv", [names["exp"], names["w"]], [names["y"]], name=f"{p}/Conv", kernel_shape=[1, 1]),
                 helper.make_node("Slice", [names["y"], names["s0"], names["sK"], names["ax"]], [names["num"]], name=f"{p}/SliceNum"),
                 helper.make_node("Slice", [names["y"], names["sK"], names["sK1"], names["ax"]], [names["den"]], name=f"{p}/SliceDen"),
                 helper.make_node("Div", [names["num"], names["den"]], [names["ratio"] if bias is not None else out], name=f"{p}/Div")]
        if bias is not None:
            new_inits.append(numpy_helper.from_array(bias.reshape(1, k, 1, 1), names["b"]))
            nodes.append(helper.make_node("Add", [names["ratio"], names["b"]], [out], name=f"{p}/Add"))
        _splice(g, [sm, conv], nodes, new_inits)
        done += 1
    if done:
        _prune(model)   # the old weight, unless something else reads it
        onnx.checker.check_model(model)
    return done


def cubic_phase_taps(scale: int, a: float = -0.75) -> np.ndarray:
    """The 5-tap filters of an integer-``scale`` cubic upsampling with half-pixel centres: ``scale x 5`` float64,
    row ``r`` = the weights of input offsets -2..2 for output phase ``r`` (output ``scale * j + r`` reads inputs
    ``j - 2 .. j + 2``). Keys 1981 cubic convolution with parameter ``a`` (PyTorch and onnxruntime: -0.75); each
    row sums to 1. Raises ValueError for a scale below 1."""
    if scale < 1:
        raise ValueError(f"cubic_phase_taps: scale {scale} < 1")

    def w(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        if x < 2:
            return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
        return 0.0

    taps = np.zeros((scale, 5))
    for r in range(scale):
        d = (r + 0.5) / scale - 0.5          # source offset of phase r from input j
        f = int(np.floor(d))                  # -1 or 0
        t = d - f
        for i, dist in zip(range(-1, 3), (t + 1, t, 1 - t, 2 - t)):
            taps[r, f + i + 2] = w(dist)
    return taps


def bicubic_resize_as_conv(model) -> int:
    """Rewrite each cubic ``Resize`` of a graph input (mode cubic, ``cubic_coeff_a`` -0.75, half-pixel or
    pytorch-half-pixel centres, ``exclude_outside`` 0, constant scales ``[1, 1, s, s]`` with an integer s in 2..8,
    the input's channel count fixed) as edge Pad + grouped 5 x 5 Conv + DepthToSpace (module docstring), in place.
    Returns the number rewritten (0 leaves the model unchanged)."""
    import onnx
    from onnx import helper, numpy_helper
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    channels = {}
    for i in g.input:
        dims = i.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            channels[i.name] = dims[1].dim_value
    done = 0
    for rs in [n for n in g.node if n.op_type == "Resize"]:
        if (_attr(rs, "mode", b"nearest") != b"cubic" or abs(_attr(rs, "cubic_coeff_a", -0.75) + 0.75) > 1e-9
                or _attr(rs, "coordinate_transformation_mode", b"half_pixel") not in (b"half_pixel", b"pytorch_half_pixel")
                or _attr(rs, "exclude_outside", 0) != 0 or rs.input[0] not in channels or len(rs.input) < 3):
            continue
        scales = consts.get(rs.input[2], inits.get(rs.input[2]))
        if scales is None or len(scales) != 4 or list(scales[:2]) != [1, 1] or scales[2] != scales[3]:
            continue
        s = int(round(float(scales[2])))
        if abs(float(scales[2]) - s) > 1e-9 or not 2 <= s <= 8:
            continue
        c = channels[rs.input[0]]
        taps = cubic_phase_taps(s)
        kernel = np.einsum("yi,xj->yxij", taps, taps).reshape(s * s, 1, 5, 5)      # phase (ry, rx) -> 5 x 5
        weight = np.tile(kernel, (c, 1, 1, 1)).astype(np.float32)                    # C s² x 1 x 5 x 5
        p = f"{rs.name or 'resize'}/as_conv"
        names = {k: f"{p}/{k}" for k in ("pads", "padded", "w", "phases")}
        new_inits = [numpy_helper.from_array(np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64), names["pads"]),
                     numpy_helper.from_array(weight, names["w"])]
        nodes = [helper.make_node("Pad", [rs.input[0], names["pads"]], [names["padded"]], name=f"{p}/Pad", mode="edge"),
                 helper.make_node("Conv", [names["padded"], names["w"]], [names["phases"]], name=f"{p}/Conv",
                                  kernel_shape=[5, 5], group=c),
                 helper.make_node("DepthToSpace", [names["phases"]], [rs.output[0]], name=f"{p}/DepthToSpace",
                                  blocksize=s, mode="CRD")]
        _splice(g, [rs], nodes, new_inits)
        done += 1
    if done:
        _prune(model)
        onnx.checker.check_model(model)
    return done


def _splice(g, old: list, nodes: list, inits: list) -> None:
    """Replace the nodes ``old`` of graph ``g`` by ``nodes`` (inserted where the first of ``old`` was, so the
    graph stays topologically sorted) and add the initializers ``inits``."""
    at = list(g.node).index(old[0])
    for n in old:
        g.node.remove(n)
    for i, n in enumerate(nodes):
        g.node.insert(at + i, n)
    g.initializer.extend(inits)


def _prune(model) -> None:
    """Drop Constant nodes and initializers that nothing reads any more (e.g. a rewritten Resize's scales)."""
    g = model.graph
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    for n in [n for n in g.node if n.op_type == "Constant" and n.output[0] not in used]:
        g.node.remove(n)
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)


def rewrite(model) -> list[str]:
    """Apply every rewrite of this module to ``model`` (in place); returns the names of those that changed it."""
    applied = []
    if fuse_softmax_expectation(model):
        applied.append(SOFTMAX_EXPECTATION)
    if bicubic_resize_as_conv(model):
        applied.append(BICUBIC_AS_CONV)
    return applied


def optimize_main(args: Namespace) -> int:
    """``onnx optimize MODEL_DIR [--version V]``: rewrite ``MODEL_DIR/model.onnx`` in place (module docstring),
    update its manifest and re-derive ``explain.onnx``. Returns 0, or 1 when no rewrite applies (nothing is
    written). Raises FileNotFoundError without a manifest or model file."""
    import onnx
    from .data.photos import sha256
    from .manifest import write_manifest
    manifest_path = os.path.join(args.model_dir, "manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    onnx_path = os.path.join(args.model_dir, manifest["onnx"]["file"])
    model = onnx.load(onnx_path)
    applied = rewrite(model)
    if not applied:
        print(f"[onnx] {onnx_path}: no rewrite applies; unchanged")
        return 1
    onnx.save(model, onnx_path)
    manifest["onnx"].update({"sha256": sha256(onnx_path), "bytes": os.path.getsize(onnx_path),
                             "rewrites": sorted(set(manifest["onnx"].get("rewrites", [])) | set(applied))})
    if args.version:
        manifest["version"] = args.version
    write_manifest(args.model_dir, manifest)
    print(f"[onnx] {onnx_path}: {', '.join(applied)}; sha256 {manifest['onnx']['sha256'][:12]}…, version {manifest['version']}")
    if manifest.get("explain"):
        from . import explain
        explain.main(Namespace(model_dirs=[args.model_dir]))
    return 0
