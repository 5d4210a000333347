"""Static INT8 quantization of a served ONNX graph, in QDQ form, built with the ``onnx`` package (onnxruntime's
Python quantization tools are not in Debian).

What is quantized: every ``Conv`` (the multiply-accumulate that dominates our networks). Its weight becomes an
int8 initializer with a symmetric **per-output-channel** scale (``max |W[c]| / 127``) behind a
``DequantizeLinear`` (axis 0); its bias an int32 initializer with scale ``s_x * s_w[c]`` (zero point 0); its
input and its output each pass through ``QuantizeLinear`` -> ``DequantizeLinear`` with a **per-tensor uint8**
scale and zero point from calibration. onnxruntime's graph optimizer fuses each ``DQ -> Conv -> Q`` group into
one ``QLinearConv`` (MLAS u8s8 kernels: AVX2 ``vpmaddubsw``, AVX-512 VNNI ``vpdpbusd`` where the CPU has it).
Everything else (PONO, IN, AN, the residual adds, the colour head, the solver) stays float32 between a
``DequantizeLinear`` and a ``QuantizeLinear``.

Calibration (:func:`activation_ranges`): the range of each Conv input and output over calibration inputs,
``percentile`` of the values (default 99.99 % / 0.01 %, plus 0 so ReLU outputs keep an exact zero): clipping
the rare extreme values keeps the 256 steps for the bulk of the distribution (min/max would spend them on
outliers; entropy calibration needs histograms per tensor and gave no better result in the literature for
conv nets with ReLU: Wu et al. 2020, "Integer Quantization for Deep Learning Inference", Table 3: percentile
99.99 % ~ entropy on ResNet-50). The statistics come from running the float graph with every Conv input and
output added as a graph output (:func:`calibration_graph`) in onnxruntime (Node: ``scripts/int8.ts``), so the
calibration sees exactly the served graph.
"""
from __future__ import annotations

import json
import os

import numpy as np


def conv_tensors(model) -> list[str]:
    """Names of every Conv node's activation input and output (in graph order, no duplicates)."""
    out: list[str] = []
    for n in model.graph.node:
        if n.op_type == "Conv":
            for t in (n.input[0], n.output[0]):
                if t not in out:
                    out.append(t)
    return out


def calibration_graph(src: str, dst: str) -> list[str]:
    """Write ``dst``: the graph of ``src`` with every Conv input and output as an extra float32 graph output.
    Returns the tensor names (in the order they were added)."""
    import onnx
    from onnx import TensorProto, helper
    model = onnx.load(src)
    names = conv_tensors(model)
    have = {o.name for o in model.graph.output}
    for t in names:
        if t not in have:
            model.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    onnx.save(model, dst)
    return names


def activation_ranges(stats: dict[str, dict]) -> dict[str, tuple[float, float]]:
    """``{tensor: (lo, hi)}`` from the calibration statistics ``{tensor: {"lo": p_low, "hi": p_high}}`` (the
    percentiles written by ``scripts/int8.ts``), widened to include 0 (an exact zero for padding and ReLU)."""
    return {t: (min(0.0, float(s["lo"])), max(0.0, float(s["hi"]))) for t, s in stats.items()}


def _uint8_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric uint8 scale and zero point covering [lo, hi] (lo <= 0 <= hi)."""
    scale = max(hi - lo, 1e-8) / 255.0
    zp = int(round(-lo / scale))
    return scale, min(255, max(0, zp))


def quantize(src: str, dst: str, ranges: dict[str, tuple[float, float]], skip: set[str] | None = None) -> dict:
    """Write ``dst``: ``src`` with every Conv (but those whose output name is in ``skip``) in QDQ form (module
    docstring), activation ranges from ``ranges``. Returns ``{"quantized": n, "kept_fp32": [...], "bytes": size}``.

    Raises:
        KeyError: a Conv tensor without a calibrated range.
        ValueError: a Conv whose weight is not an initializer (a computed weight cannot be quantized statically).
    """
    import onnx
    from onnx import helper, numpy_helper
    model = onnx.load(src)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    skip = skip or set()
    new_inits = []
    qdq_of: dict[str, str] = {}  # float tensor -> its Q/DQ'd copy
    kept = []
    quantized = 0

    made: dict[str, tuple[str, str, float]] = {}

    def qparams(t: str) -> tuple[str, str, float]:
        """(scale initializer, zero-point initializer, scale) of tensor ``t``, made once."""
        if t not in made:
            scale, zp = _uint8_qparams(*ranges[t])
            base = t.replace("/", "_").strip("_")
            made[t] = (f"{base}_int8_scale", f"{base}_int8_zp", scale)
            new_inits.append(numpy_helper.from_array(np.array(scale, np.float32), made[t][0]))
            new_inits.append(numpy_helper.from_array(np.array(zp, np.uint8), made[t][1]))
        return made[t]

    consumers: dict[str, list] = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    graph_outputs = {o.name for o in g.output}
    dq_made: dict[str, float] = {}  # tensors our DequantizeLinear writes -> their scale (no second Q/DQ needed)
    dropped: set[int] = set()  # Relu nodes folded into the preceding conv's output quantization
    out_nodes = []
    for n in g.node:
        if id(n) in dropped:
            continue
        if n.op_type != "Conv" or n.output[0] in skip:
            if n.op_type == "Conv":
                kept.append(n.output[0])
            out_nodes.append(n)
            continue
        if n.input[1] not in inits:
            raise ValueError(f"Conv {n.name}: weight {n.input[1]} is not an initializer")
        x, y = n.input[0], n.output[0]
        if x in dq_made:  # already the output of a quantized conv: read it as it is
            qdq_of[x], s_x = x, dq_made[x]
        else:
            s_name, z_name, s_x = qparams(x)
            if x not in qdq_of:  # x -> Q -> DQ, once per tensor (several convs may read it)
                base = x.replace("/", "_").strip("_")
                out_nodes.append(helper.make_node("QuantizeLinear", [x, s_name, z_name], [base + "_int8_q"], name=base + "_int8_q"))
                out_nodes.append(helper.make_node("DequantizeLinear", [base + "_int8_q", s_name, z_name], [base + "_int8_dq"], name=base + "_int8_dq"))
                qdq_of[x] = base + "_int8_dq"
        w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        s_w = np.maximum(np.abs(w.reshape(w.shape[0], -1)).max(1), 1e-8) / 127.0
        w_q = np.clip(np.round(w / s_w.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int8)
        wn = f"{n.input[1]}_{len(new_inits)}_int8"
        new_inits += [numpy_helper.from_array(w_q, wn), numpy_helper.from_array(s_w.astype(np.float32), wn + "_scale"),
                      numpy_helper.from_array(np.zeros(len(s_w), np.int8), wn + "_zp")]
        out_nodes.append(helper.make_node("DequantizeLinear", [wn, wn + "_scale", wn + "_zp"], [wn + "_dq"], name=wn + "_dq", axis=0))
        inputs = [qdq_of[x], wn + "_dq"]
        if len(n.input) > 2 and n.input[2]:
            b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64)
            s_b = (s_x * s_w).astype(np.float32)
            bn = f"{n.input[2]}_{len(new_inits)}_int32"  # the bias scale depends on this conv's input scale
            new_inits += [numpy_helper.from_array(np.round(b / s_b).astype(np.int32), bn),
                          numpy_helper.from_array(s_b, bn + "_scale"), numpy_helper.from_array(np.zeros(len(s_b), np.int32), bn + "_zp")]
            out_nodes.append(helper.make_node("DequantizeLinear", [bn, bn + "_scale", bn + "_zp"], [bn + "_dq"], name=bn + "_dq", axis=0))
            inputs.append(bn + "_dq")
        raw = y + "_int8_raw"
        out_nodes.append(helper.make_node("Conv", inputs, [raw], name=n.name, **{a.name: helper.get_attribute_value(a) for a in n.attribute}))
        # A conv whose only reader is a Relu: quantize to the Relu's range [0, hi] (the clamp is the ReLU) and drop
        # the Relu; its readers read the DQ under the Relu's output name. Otherwise: Q -> DQ under the conv's name.
        readers = consumers.get(y, [])
        relu = readers[0] if (len(readers) == 1 and readers[0].op_type == "Relu" and y not in graph_outputs
                              and readers[0].output[0] in ranges) else None
        name = relu.output[0] if relu is not None else y
        if relu is not None:
            dropped.add(id(relu))
        s_name, z_name, scale = qparams(name)
        out_nodes.append(helper.make_node("QuantizeLinear", [raw, s_name, z_name], [name + "_int8_q"], name=name + "_int8_q"))
        out_nodes.append(helper.make_node("DequantizeLinear", [name + "_int8_q", s_name, z_name], [name], name=name + "_int8_dq"))
        dq_made[name] = scale
        quantized += 1
    del g.node[:]
    g.node.extend(out_nodes)
    g.initializer.extend(new_inits)
    used = {x for n in g.node for x in n.input}  # drop the float weights and biases no longer read
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 13 for o in model.opset_import):
        raise ValueError("per-channel DequantizeLinear needs opset >= 13")
    onnx.checker.check_model(model)
    onnx.save(model, dst)
    return {"quantized": quantized, "kept_fp32": kept, "bytes": os.path.getsize(dst)}


def default_skip(model) -> set[str]:
    """The Convs kept in float32 (their output names): the first trained Conv (it reads the image), the last one
    (it writes the output), and every Conv whose weight is not a trained module's (``*.weight``): the graph
    rewrites' fixed kernels (the upscaler's bicubic x4 as a convolution, ``as_conv``) and the hybrid colorizer's
    solver. Measured on the upscaler's calibration crops: quantizing the bicubic kernel too costs 13 dB
    (int8 vs fp32 PSNR 27 dB), the first and last layers another 19 (40 -> 59 dB)."""
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    trained = [n for n in convs if n.input[1].endswith(".weight")]
    skip = {n.output[0] for n in convs if n not in trained}
    if trained:
        skip |= {trained[0].output[0], trained[-1].output[0]}
    return skip


def calibration_inputs(model_dir: str, out_dir: str, n: int = 16, side: int = 128, seed: int = 0,
                       split: str = "val") -> dict:
    """Write ``n`` calibration inputs of the model in ``model_dir`` to ``out_dir`` (``inputs.json`` + one raw
    little-endian float32 NCHW file per input and sample) from the **validation** photos (never the test photos):
    ``side`` x ``side`` crops (x the model's scale), each prepared by the task's registered ``int8_sample`` hook
    (:func:`trainer.registry.find`) as the service prepares it. With ``split="test"`` the inputs are the centre crops of the 8 held-out test photos
    instead (``n`` ignored) and each sample has a ``target`` (the true image, [-1, 1], the size of the output): the
    quality comparison, run once. Returns the ``inputs.json`` dict. Raises ValueError for another task."""
    import torch

    from .data import photos
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    task = manifest["task"]
    scale = int(manifest.get("scale", 4 if task == "upscale" else 1))
    if split == "test":
        from .data import test_photos
        s = side * scale
        crops = [torch.from_numpy(im[(im.shape[0] - s) // 2:][:s, (im.shape[1] - s) // 2:][:, :s].copy()).permute(2, 0, 1)
                 for im in test_photos.load_all(None).values() if min(im.shape[:2]) >= s]  # centre s x s crops
    else:
        _, val = photos.split(photos.index(photos.ALL_COLLECTIONS))
        crops = photos.PhotoCrops(val, crop=side * scale, scales=tuple(max(s, side * scale) for s in (256, 384, 512)), seed=seed).batch(n)
    os.makedirs(out_dir, exist_ok=True)
    samples, targets = [], []
    from .registry import find
    prepare = find("int8_sample", manifest)
    for i, c in enumerate(crops):
        hwc = c.permute(1, 2, 0).numpy()
        feeds = prepare(hwc, i, seed, manifest)
        if split == "test":  # the true image the output is scored against
            feeds["target"] = hwc.transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1
        files = {}
        for k, v in feeds.items():
            f = f"{i:03d}-{k}.f32"
            np.ascontiguousarray(v, dtype="<f4").tofile(os.path.join(out_dir, f))
            files[k] = {"file": f, "shape": list(v.shape)}
        target = files.pop("target", None)
        samples.append(files)
        if target:
            targets.append(target)
    desc = {"model": os.path.abspath(model_dir), "task": task, "n": len(samples), "side": side, "samples": samples,
            "source": ("centre crops of the 8 test photos" if split == "test" else
                       "validation photos of every collection (trainer.data.photos.split), seeded crops")}
    if targets:
        desc["targets"] = targets
    with open(os.path.join(out_dir, "inputs.json"), "w") as f:
        json.dump(desc, f, indent=1)
    return desc


# Bounds of the quality an int8 variant may lose against fp32 to be served by PRECISION=auto (issue 47).
BOUNDS = {"psnr_loss_db": 0.15, "hue_loss": 0.01, "detail_loss": 0.02}


def scores(model_dir: str, inputs_dir: str, outputs_dir: str, manifest: dict) -> dict:
    """The task's own quality scores of the fp32 and int8 outputs that ``scripts/int8.ts compare`` kept in
    ``outputs_dir`` for the inputs and targets of ``inputs_dir``, by the task's registered ``int8_score`` hook
    (colorizers: hue agreement; inpainters: detail ratio in the hole); {} for a task without one. Each hook returns
    ``{score_fp32, score_int8, score_loss}`` entries (loss = fp32 - int8)."""
    from .registry import find
    try:
        hook = find("int8_score", manifest)
    except ValueError:
        return {}
    desc = json.load(open(os.path.join(inputs_dir, "inputs.json")))

    def read(d: str, f: str, shape) -> np.ndarray:
        return np.fromfile(os.path.join(d, f), "<f4").reshape(shape)
    samples = []
    for i, (s, t) in enumerate(zip(desc["samples"], desc["targets"])):
        feeds = {k: read(inputs_dir, v["file"], v["shape"]) for k, v in s.items()}
        target = read(inputs_dir, t["file"], t["shape"])
        outs = {p: np.fromfile(os.path.join(outputs_dir, f"{i:03d}-{p}.f32"), "<f4").reshape(target.shape) for p in ("fp32", "int8")}
        samples.append((feeds, target, outs))
    return hook(samples)


def prepare_main(args) -> int:
    """``onnx int8-prepare models/NAME --work DIR``: the calibration inputs (``--n`` validation crops of ``--side``
    px), the test inputs (the test photos' centre crops, with targets), the speed inputs (``--speed-side`` px
    validation crops) and the calibration graph, under ``DIR``. Prints a JSON summary."""
    import torch
    torch.set_num_threads(1)
    os.makedirs(args.work, exist_ok=True)
    calib = calibration_inputs(args.model_dir, os.path.join(args.work, "calib"), n=args.n, side=args.side, seed=0)
    test = calibration_inputs(args.model_dir, os.path.join(args.work, "test"), side=args.side, split="test")
    speed = calibration_inputs(args.model_dir, os.path.join(args.work, "speed"), n=3, side=args.speed_side, seed=7)
    names = calibration_graph(os.path.join(args.model_dir, "model.onnx"), os.path.join(args.work, "calib.onnx"))
    print(json.dumps({"calib": calib["n"], "test": test["n"], "speed": speed["n"], "tensors": len(names)}))
    return 0


def quantize_main(args) -> int:
    """``onnx int8-quantize models/NAME --stats STATS.json``: ``models/NAME/model.int8.onnx`` with
    :func:`default_skip`. Prints what was quantized."""
    import onnx
    stats = json.load(open(args.stats))
    src = os.path.join(args.model_dir, "model.onnx")
    out = quantize(src, os.path.join(args.model_dir, "model.int8.onnx"), activation_ranges(stats["stats"]),
                   default_skip(onnx.load(src)))
    print(json.dumps(out))
    return 0


def record_main(args) -> int:
    """``onnx int8-record models/NAME --stats S --quality Q --speed P --work DIR``: the manifest's
    ``variants.int8`` (file, sha256, calibration, measured quality and speed, ``within_bounds``)."""
    from .data.photos import sha256
    from .manifest import write_manifest
    manifest_path = os.path.join(args.model_dir, "manifest.json")
    manifest = json.load(open(manifest_path))
    quality, speed, stats = json.load(open(args.quality))["summary"], json.load(open(args.speed))["summary"], json.load(open(args.stats))
    inputs = json.load(open(os.path.join(args.work, "calib", "inputs.json")))
    loss = quality.get("psnr_loss_db")
    task_scores = scores(args.model_dir, os.path.join(args.work, "test"), args.quality.replace(".json", "-outputs"), manifest)
    quality.update(task_scores)
    # losses are fp32 - int8: an int8 graph that scores better is within bounds
    within = loss is not None and loss <= BOUNDS["psnr_loss_db"]
    within = within and all(task_scores[k] <= BOUNDS[k] for k in BOUNDS if k in task_scores)
    manifest.setdefault("variants", {})["int8"] = {
        "file": "model.int8.onnx",
        "sha256": sha256(os.path.join(args.model_dir, "model.int8.onnx")),
        "within_bounds": bool(within),
        "bounds": BOUNDS,
        "scheme": "static QDQ (trainer/int8.py): Conv weights int8 symmetric per output channel, biases int32, "
                  "Conv inputs and outputs uint8 per tensor; the first and last trained Conv and fixed-kernel Convs "
                  "(graph rewrites, solver) in fp32; PONO / IN / AN and the rest in fp32",
        "calibration": {"method": f"percentiles {stats['percentiles']} of each Conv input and output (0 always in range)",
                        "inputs": inputs["n"], "side": inputs["side"], "source": inputs["source"],
                        "tool": "scripts/int8.ts calibrate (onnxruntime-node)"},
        "quality": {"photos": "centre crops of the test photos (scripts/int8.ts compare)", **quality},
        "speed": {"what": "session.run, 1 intra-op thread, median of 5 after a warm-up; validation crops", **speed},
        "command": f"npm run int8 -- {os.path.basename(os.path.normpath(args.model_dir))}",
    }
    write_manifest(args.model_dir, manifest)
    print(json.dumps(manifest["variants"]["int8"], indent=1))
    return 0


def figure_main(args) -> int:
    """``onnx int8-figure OUT.png NAME:INDEX ...``: for each model, test sample INDEX of its last ``npm run int8``
    (``out/int8/NAME``): fp32 output | int8 output | |int8 - fp32| x 10, 256 px each, one row per model."""
    from PIL import Image, ImageDraw
    rows = []
    for spec in args.samples:
        name, idx = spec.split(":")
        idx = int(idx)
        work = os.path.join(args.work, name)
        t = json.load(open(os.path.join(work, "test", "inputs.json")))["targets"][idx]
        out = {p: np.fromfile(os.path.join(work, "quality-outputs", f"{idx:03d}-{p}.f32"), "<f4").reshape(t["shape"])[0].transpose(1, 2, 0)
               for p in ("fp32", "int8")}
        u8 = lambda x: ((np.clip(x, -1, 1) + 1) * 127.5).round().astype(np.uint8)
        diff = np.clip(np.abs(out["fp32"] - out["int8"]) * 127.5 * 10, 0, 255).astype(np.uint8)
        row = Image.new("RGB", (3 * 256 + 24, 278), "white")
        ImageDraw.Draw(row).text((6, 4), f"{name}: fp32 | int8 | |int8 - fp32| x 10", fill="black")
        for j, a in enumerate((u8(out["fp32"]), u8(out["int8"]), diff)):
            row.paste(Image.fromarray(a).resize((256, 256)), (6 + j * 262, 20))
        rows.append(row)
    fig = Image.new("RGB", (rows[0].width, sum(r.height for r in rows)), "white")
    for i, r in enumerate(rows):
        fig.paste(r, (0, i * r.height))
    fig.save(args.out)
    print(f"[int8] {args.out} {fig.size}")
    return 0
