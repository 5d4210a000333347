"""``explain.onnx``: a model's own graph with its internal statistics as extra, named outputs (issue 34, "see
what the network sees").

Both papers the models are built on say their statistics are images worth looking at: PONO's ``mu`` and
``sigma`` (Li et al. 2019, "Positional Normalization", section 3, Figs. 1 and 3) and Attentive Normalization's
learned soft semantic layout (Wang et al. 2020, Fig. 5). They exist inside every forward pass; this module
finds them in an exported ``model.onnx`` (by the node scopes the PyTorch exporter writes) and writes a
companion ``explain.onnx`` in the model folder with **the same nodes and weights** plus outputs:

* per PONO layer k (``<scope>/pono[_i]/ReduceMean`` + ``Sqrt``, eq. 2), in graph order:
  ``pono{k}_mu`` = mean over channels of the layer's activations, B x 1 x h x w, and ``pono{k}_sigma`` =
  ``sqrt(biased variance over channels + 1e-5)``, B x 1 x h x w, plus ``pono{k}_x`` = those activations,
  B x C x h x w (the service never fetches it; the parity tests recompute mu and sigma from it);
* per PONO-DMS layer k (``<scope>/to_beta/Conv`` and ``<scope>/to_gamma/Conv``, each added to mu or sigma:
  :class:`trainer.normalization.DynamicMomentShortcut`, module ``dmsK``): ``dmsK_beta`` and ``dmsK_gamma`` = the beta and
  gamma the DMS generated for the moment shortcut, B x 1 x h x w (for a multi-channel DMS, B x C x h x w,
  their mean over the C channels: one map per layer, as mu and sigma);
* per AN layer k (``<scope>/entities/Conv`` ... ``<scope>/Softmax``, eqs. 1-4): ``an{k}_layout`` = the soft
  region assignment S, B x n x h x w (softmax over the n entities). Self-sampling (eq. 2) is on at inference
  only when the graph has ``<scope>/MaxPool`` (``inference_sampling="grid"``: fixed, evenly spaced positions
  of the 2 x 2 max-pooled key map, :func:`trainer.normalization.grid_positions`); the manifest says so and
  the service computes those positions from the layer's size.

The model's own output stays the first output, unchanged. The manifest gains
``explain: {file, sha256, bytes, model_sha256, maps: [{output, kind, layer, ...}]}`` (``model_sha256`` = the
``model.onnx`` whose nodes and weights it carries). onnxruntime computes only the outputs a run fetches, so
the service's task routes (which run ``model.onnx``) are untouched.

Raises ValueError when a graph has neither PONO nor AN layers (``POST /v1/explain`` answers 422 for such a
model: nothing to show).
"""
from __future__ import annotations

import json
import os
import re
from argparse import Namespace

KINDS = ("pono_mu", "pono_sigma", "pono_dms_beta", "pono_dms_gamma", "an_layout")


def _layer_name(node_name: str) -> str:
    """``/body/down1/Conv`` -> ``body.down1`` (the PyTorch module path of the node's scope)."""
    return ".".join(p for p in node_name.split("/")[:-1] if p) or node_name


def find_maps(graph) -> list[dict]:
    """The PONO and AN statistics of an ONNX graph (``onnx.GraphProto``): a list of ``{output, tensor, kind,
    layer, ...}`` in graph order (module docstring). ``tensor`` is the internal tensor the output exposes."""
    nodes = list(graph.node)
    by_name = {n.name: n for n in nodes}
    producer = {o: n for n in nodes for o in n.output}
    inits = {i.name: i for i in graph.initializer}
    maps, k_pono, k_an = [], 0, 0
    for n in nodes:
        m = re.fullmatch(r"(.*/pono(?:_\d+)?)/ReduceMean", n.name)
        if n.op_type == "ReduceMean" and m and (m.group(1) + "/Sqrt") in by_name:
            k_pono += 1
            src = producer.get(n.input[0])
            layer = _layer_name(src.name) if src is not None else n.input[0]
            common = {"layer": layer, "pono_index": k_pono, "definition": "PONO (Li et al. 2019, eq. 2) over the channels of the "
                      f"output of {layer}: mu = mean, sigma = sqrt(biased variance + 1e-5)"}
            maps.append({"output": f"pono{k_pono}_mu", "tensor": n.output[0], "kind": "pono_mu", **common})
            maps.append({"output": f"pono{k_pono}_sigma", "tensor": by_name[m.group(1) + "/Sqrt"].output[0], "kind": "pono_sigma", **common})
            maps.append({"output": f"pono{k_pono}_x", "tensor": n.input[0], "kind": "pono_input", **common})
        m = re.fullmatch(r"(.*)/to_(beta|gamma)/Conv", n.name)
        if n.op_type == "Conv" and m:
            add = next((c for c in nodes if c.op_type == "Add" and n.output[0] in c.input), None)
            w = inits.get(n.input[1])
            if add is not None and w is not None:
                which = m.group(2)
                layer = _layer_name(n.name).removesuffix(f".to_{which}")
                channels = int(w.dims[0])
                maps.append({"output": f"{layer.replace('.', '_')}_{which}", "tensor": add.output[0], "kind": f"pono_dms_{which}",
                             "layer": layer, "channels": channels,
                             **({"reduce": "channel_mean"} if channels > 1 else {}),
                             "definition": f"PONO-DMS (Li et al. 2019, section 3.1): the {which} a ConvNet generated from "
                                           f"(mu, sigma) for the moment shortcut{' (mean over its ' + str(channels) + ' channels)' if channels > 1 else ''}"})
        m = re.fullmatch(r"(.*)/entities/Conv", n.name)
        if n.op_type == "Conv" and m and (m.group(1) + "/Softmax") in by_name:
            k_an += 1
            scope = m.group(1)
            w = inits.get(n.input[1])
            entities = int(w.dims[0]) if w is not None else None
            sampling = (scope + "/MaxPool") in by_name
            maps.append({"output": f"an{k_an}_layout", "tensor": by_name[scope + "/Softmax"].output[0], "kind": "an_layout",
                         "layer": _layer_name(n.name).removesuffix(".entities"), "entities": entities,
                         "sampling": ({"mode": "grid", "pool": 2, "n": entities} if sampling else {"mode": "off"}),
                         "definition": "Attentive Normalization (Wang et al. 2020, eqs. 1-4): soft assignment of each position "
                                       "to the n semantic entities, softmax over n"})
    return maps


def derive(model_path: str, out_path: str) -> list[dict]:
    """Write ``out_path`` = ``model_path`` with the maps of :func:`find_maps` as extra outputs (Identity nodes
    named as the outputs; the model's outputs first and unchanged). Returns the maps. Raises ValueError when
    the graph has no PONO or AN layer."""
    import onnx
    from onnx import TensorProto, helper
    model = onnx.load(model_path)
    maps = find_maps(model.graph)
    if not maps:
        raise ValueError(f"{model_path}: no PONO or AN layer in the graph; nothing to explain")
    for mp in maps:
        if mp.get("reduce") == "channel_mean":  # a multi-channel DMS map: its mean over C, B x 1 x h x w
            model.graph.node.append(helper.make_node("ReduceMean", [mp["tensor"]], [mp["output"]], name=f"explain/{mp['output']}", axes=[1], keepdims=1))
        else:
            model.graph.node.append(helper.make_node("Identity", [mp["tensor"]], [mp["output"]], name=f"explain/{mp['output']}"))
        model.graph.output.append(helper.make_tensor_value_info(mp["output"], TensorProto.FLOAT, [f"{mp['output']}_{d}" for d in "nchw"]))
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    return maps


def main(args: Namespace) -> int:
    """``python3 -m trainer explain export models/NAME [...]``: write ``explain.onnx`` next to each model and its
    ``explain`` entry into the manifest. A model without PONO or AN is reported and left alone (exit 0)."""
    from .data.photos import sha256
    from .manifest import write_manifest
    for d in args.model_dirs:
        man_path = os.path.join(d, "manifest.json")
        manifest = json.load(open(man_path))
        model_path = os.path.join(d, manifest["onnx"]["file"])
        out_path = os.path.join(d, "explain.onnx")
        try:
            maps = derive(model_path, out_path)
        except ValueError as err:
            print(f"[explain] {d}: {err}")
            manifest.pop("explain", None)
            if os.path.exists(out_path):
                os.remove(out_path)
        else:
            manifest["explain"] = {"file": "explain.onnx", "sha256": sha256(out_path), "bytes": os.path.getsize(out_path),
                                   "model_sha256": manifest["onnx"]["sha256"],
                                   "maps": [{k: v for k, v in mp.items() if k != "tensor"} for mp in maps if mp["kind"] in KINDS],
                                   "parity_outputs": [mp["output"] for mp in maps if mp["kind"] == "pono_input"],
                                   "derived_by": "python3 -m trainer explain export (trainer/explain.py)"}
            print(f"[explain] {d}: {', '.join(mp['output'] for mp in maps if mp['kind'] in KINDS)} -> {out_path}")
        write_manifest(d, manifest)
    return 0


def record_maps(model, inputs) -> tuple[object, list]:
    """Run ``model(*inputs)`` (torch tensors) with hooks that record, in call order, every PONO's ``(mu,
    sigma)`` and every Attentive Normalization layer's soft layout S. Returns (the model's output, maps): maps
    is a list of ``("pono", mu, sigma)`` and ``("an", S)`` tuples, the order :func:`find_maps` numbers them in
    (graph order = call order)."""
    import torch
    from .normalization import PONO, AttentiveNormalization
    maps, handles, originals = [], [], []
    for mod in model.modules():
        if isinstance(mod, PONO):
            handles.append(mod.register_forward_hook(lambda _m, _i, out: maps.append(("pono", out[1], out[2]))))
        elif isinstance(mod, AttentiveNormalization):
            orig = mod.semantic_layout
            originals.append((mod, orig))

            def wrapped(x, _orig=orig):
                s = _orig(x)
                maps.append(("an", s))
                return s
            mod.semantic_layout = wrapped
    try:
        with torch.no_grad():
            out = model(*inputs)
    finally:
        for h in handles:
            h.remove()
        for mod, orig in originals:
            mod.semantic_layout = orig
    return out, maps


def fixture_main(args: Namespace) -> int:
    """``python3 -m trainer explain fixture models/NAME --checkpoint PATH``: PyTorch's maps for the model's
    parity fixture input -> ``fixture/explain.json`` + ``fixture/explain-<output>.f32`` (little-endian float32),
    which ``test/explain.test.ts`` compares with ``explain.onnx`` at 1e-4. Raises ValueError when the checkpoint
    does not reproduce the fixture's output (it is not the exported model)."""
    import numpy as np
    import torch
    d = args.model_dir
    fx_dir = os.path.join(d, "fixture")
    fx = json.load(open(os.path.join(fx_dir, "fixture.json")))
    specs = fx.get("inputs") or [fx["input"]]
    inputs = [torch.from_numpy(np.fromfile(os.path.join(fx_dir, s["file"]), "<f4").reshape(s["dims"]).copy()) for s in specs]
    want = np.fromfile(os.path.join(fx_dir, fx["output"]["file"]), "<f4").reshape(fx["output"]["dims"])
    from .registry import load_served
    model = load_served(d, args.checkpoint)
    out, recorded = record_maps(model, inputs)
    diff = float(np.abs(out.numpy() - want).max())
    if diff > 1e-4:
        raise ValueError(f"{args.checkpoint} does not reproduce {d}'s fixture output (max abs diff {diff:.3g}): not the exported weights")
    manifest = json.load(open(os.path.join(d, "manifest.json")))
    outs, k_pono, k_an = [], 0, 0
    for rec in recorded:
        if rec[0] == "pono":
            k_pono += 1
            pairs = [(f"pono{k_pono}_mu", rec[1]), (f"pono{k_pono}_sigma", rec[2])]
        else:
            k_an += 1
            pairs = [(f"an{k_an}_layout", rec[1])]
        for name, t in pairs:
            a = t.numpy().astype("<f4")
            a.tofile(os.path.join(fx_dir, f"explain-{name}.f32"))
            outs.append({"name": name, "dims": list(a.shape), "file": f"explain-{name}.f32"})
    served = {m["output"] for m in manifest.get("explain", {}).get("maps", [])}
    if {o["name"] for o in outs} != served:
        raise ValueError(f"recorded maps {sorted(o['name'] for o in outs)} differ from the manifest's {sorted(served)}")
    with open(os.path.join(fx_dir, "explain.json"), "w") as f:
        json.dump({"source": f"PyTorch forward hooks on {os.path.basename(args.checkpoint)} for this fixture's inputs",
                   "checkpoint": args.checkpoint, "outputs": outs, "tolerance_max_abs": 1e-4, "torch_version": torch.__version__}, f, indent=2)
    print(f"[explain] {d}: PyTorch maps {', '.join(o['name'] for o in outs)} -> {fx_dir}/explain.json (model output diff {diff:.2g})")
    return 0
