"""``colorize export-hints``: the hinted colorizer (or, with ``--pipeline``, the hybrid of
:mod:`trainer.colorize.hybrid`) to ONNX with its parity fixture, manifest and NOTICE. Kept apart from
:mod:`trainer.colorize.hints` (the network and its training) so the hybrid can import the network without a cycle."""
from __future__ import annotations

import json
import os
from argparse import Namespace

import numpy as np
import torch

from ..data import photos
from .hints import HINT_SIZE_MULTIPLE, fixed_hints, load_hinted, true_ab


def export(args: Namespace) -> int:
    """The ``colorize export-hints`` verb: ONNX (inputs ``gray`` N x 1 x H x W and ``hints`` N x 3 x H x W, H and W
    multiples of 16; output ``rgb``), a parity fixture with 10 hints, manifest and NOTICE into ``--out-dir``.
    With ``--pipeline`` the graph is the hybrid (:class:`~trainer.colorize.hybrid.HybridColorizer`: the network's
    prior x confidence blended with the edge-aware propagation of the hints). The manifest names data packages
    and counts, never file paths."""
    import datetime as dt

    from ..color import luma_u8, to_signed
    from ..data import test_photos
    from ..export import OPSET, export_onnx, git_commit, notice, write_manifest
    from ..manifest import scale_out
    model, a = load_hinted(args.checkpoint)
    hinted = model
    solve = None
    if getattr(args, "pipeline", False):
        from .hybrid import HybridColorizer, SolveConfig
        blend = {k: getattr(args, k) for k in ("unsure_reach", "unsure_fill", "unsure_spread") if getattr(args, k, None) is not None}
        model = HybridColorizer(hinted, SolveConfig(**blend)).eval()
        solve = model.cfg
    multiple = model.size_multiple if solve else HINT_SIZE_MULTIPLE
    ck = torch.load(args.checkpoint, map_location="cpu")
    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "model.onnx")
    nhw = {0: "batch", 2: "height", 3: "width"}
    rewrites = export_onnx(model, onnx_path, (torch.zeros(1, 1, 64, 64), torch.zeros(1, 3, 64, 64)), ("gray", "hints"), ("rgb",),
                {"gray": nhw, "hints": nhw, "rgb": nhw})
    # parity fixture: two crops of a real test photo, 10 and 0 hints
    fx = os.path.join(args.out_dir, "fixture")
    os.makedirs(fx, exist_ok=True)
    img = test_photos.load("astronaut", short_side=128)
    crops = [img[10:58, 16:80], img[60:108, 40:104]]
    x = torch.from_numpy(np.stack([to_signed(luma_u8(c)) for c in crops])[:, None].astype(np.float32))
    ab = true_ab(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1)
    h = fixed_hints(ab, 10, seed=5)
    h[1] = 0
    with torch.no_grad():
        y = model(x, h)
    for name, t in (("gray.f32", x), ("hints.f32", h), ("output.f32", y)):
        t.numpy().astype("<f4").tofile(os.path.join(fx, name))
    fixture = {"source": "skimage astronaut, short side 128, crops [10:58,16:80] (10 hints) and [60:108,40:104] (none)",
               "inputs": [{"name": "gray", "dims": list(x.shape), "file": "gray.f32", "dtype": "float32-le"},
                          {"name": "hints", "dims": list(h.shape), "file": "hints.f32", "dtype": "float32-le"}],
               "output": {"name": "rgb", "dims": list(y.shape), "file": "output.f32", "dtype": "float32-le"},
               "tolerance_max_abs": 1e-3 if solve else 1e-4, "torch_version": torch.__version__,
               **({"tolerance_reason": "the edge-aware solve is 110 BiCGSTAB steps: float32 rounding that differs between "
                                       "PyTorch's and onnxruntime's kernels grows through them (1e-3 of [-1, 1] = 0.13 "
                                       "of a uint8 level)"} if solve else {})}
    with open(os.path.join(fx, "fixture.json"), "w") as f:
        json.dump(fixture, f, indent=2)
    collections = photos.parse_collections(a.get("photos"))
    train_set, val_set = photos.split(photos.index(collections))
    metrics = json.load(open(args.metrics)) if args.metrics else {}
    spec = lambda name, ch, rng, desc: {"name": name, "layout": "NCHW", "dtype": "float32", "channels": ch, "range": rng,
                                         "size_multiple": multiple, "dynamic_dims": ["batch", "height", "width"], "description": desc}
    manifest = {
        "name": args.name, "version": args.version, "task": "translate",
        "description": (("Grayscale -> colour photo colorizer, with or without colour hints: the PONO-MS colorizer "
                         "(classification head, Zhang et al. 2016) and its hint path (Zhang et al. 2017) give a colour prior, "
                         "weighted by the network's own confidence; the hints are propagated along the photo's luma edges "
                         "(Levin et al. 2004 with a data term) and take over where they reach, and, when they disagree, "
                         "where the network is unsure. Without hints: the "
                         "confidence-weighted automatic colours.") if solve else
                        ("Grayscale -> colour photo colorizer that takes colour hints (Zhang et al. 2017): the PONO-MS "
                         "colorizer (classification head, Zhang et al. 2016) plus a hint U-Net that propagates the colours "
                         "given at a few points; without hints it is the automatic colorizer, exactly.")),
        "onnx": {"file": "model.onnx", "sha256": photos.sha256(onnx_path), "opset": OPSET, "bytes": os.path.getsize(onnx_path),
                 "rewrites": rewrites},
        "inputs": [spec("gray", 1, [-1.0, 1.0], "BT.601 luma of the photo, as 2*Y/255 - 1"),
                   spec("hints", 3, [-1.2, 1.2], "colour hints: (a*/110, b*/110, mask) per pixel, CIE Lab of the wanted colour where mask = 1, zeros elsewhere")],
        "outputs": [spec("rgb", 3, [-1.0, 1.0], "sRGB as 2*v/255 - 1; its BT.601 luma equals the input")],
        "architecture": {"body": "PONO-MS ResNet + classification head of colorize-pono (frozen)", "ngf": a["ngf"], "n_blocks": a["n_blocks"],
                         "hint_path": f"U-Net without normalization, width {a['hint_width']}, full resolution to H/16 and back to H/2, "
                                      "pooled hints at every scale, body features and automatic ab at H/2; outputs ab and a gate g, "
                                      "ab = (1 - g') ab_auto + g' ab_hint with g' = g * max(mask)",
                         "chroma_gain": a["chroma_gain"], "parameters": sum(p.numel() for p in model.parameters()),
                         "hint_parameters": sum(p.numel() for p in hinted.hint_net.parameters()),
                         **({"pipeline": "prior = the hinted network's ab x exp(-var/spread^2) (var of the body's T = 1 colour "
                                         "distribution); hints propagated by Levin et al. 2004's rows plus a data term "
                                         "(hint_weight at hints, gray_weight everywhere), solved coarse to fine by BiCGSTAB "
                                         "(levels, iters) for a*, b* and a reach channel (colour = a*, b* / reach, |.| <= 110); "
                                         "ab = a colour + (1 - a) (prior + unsure_fill u colour), a = clamp(reach_gain x reach "
                                         "+ unsure_reach u, 0, 1), u = (1 - confidence) x clamp(std of the hinted a*b* / "
                                         "unsure_spread, 0, 1) (hints of one colour stay local)", "solve": solve.as_json()} if solve else {})},
        "serving": {"default": args.default, "working_max_side": args.working_max_side},
        "training": {"task": "hint path only (body frozen): Huber loss (delta 10 CIE units) on ab at H/2 for crops with hints",
                     "hints": "geometric(1/8) points, patches of side U{1..9} holding the patch's mean true ab (Zhang et al. 2017)",
                     "data": {"packages": photos.packages_of(collections), "collections": list(collections),
                              "train_photos": len(train_set), "validation_photos": len(val_set),
                              "split": "by whole image id", "licences": "see NOTICE"},
                     "body_checkpoint": a["body"], "command": args.command, "steps": ck["step"], "scale_out": scale_out(a), "batch": a["batch"],
                     "crop": a["crop"], "lr": a["lr"], "seed": a["seed"], "threads": a["threads"], "best": ck.get("best"),
                     **({"pipeline": "no training of its own: the hint path's weights (this checkpoint) plus the solve's constants "
                                     "(architecture.solve), chosen on the validation photos with `python3 -m trainer colorize "
                                     "tune-hybrid CHECKPOINT` and `evaluate-hints CHECKPOINT --split val --levin --pipeline`"} if solve else {}),
                     "git_commit": git_commit(), "torch": torch.__version__,
                     "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
        "metrics": metrics,
        "fixture": {"dir": "fixture", **fixture},
        "license": "Model weights: CC-BY-SA-4.0 (derived from CC-BY(-SA), GPL/LGPL and CC0 photographs; see NOTICE). Code: MIT.",
    }
    write_manifest(args.out_dir, manifest, notice(args.name, "a PONO-MS colorizer with colour hints", train_set))
    print(f"[export] {onnx_path} ({manifest['onnx']['bytes']} bytes), fixture {fixture['output']['dims']}, manifest written")
    return 0
