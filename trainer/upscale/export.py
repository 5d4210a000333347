"""Export a trained x4 upscaler into ``models/<name>/``: ONNX (opset 17; dynamic batch, height, width), a
parity fixture, the manifest and the NOTICE.

* ``model.onnx``: input ``image`` float32 N x 3 x H x W RGB in [-1, 1] (H, W multiples of 4), output
  ``image_out`` float32 N x 3 x 4H x 4W (about [-1, 1]; the service rounds and clamps to uint8).
* ``fixture/``: two crops of a real photo (astronaut, 2 x 3 x 32 x 40) and PyTorch's output
  (``test/parity.test.ts`` checks onnxruntime-node against it at 1e-4).
* ``manifest.json`` (``src/models/manifest.ts``): ``serving.scale`` 4, ``serving.tile`` (input side of one pass)
  and ``serving.tile_overlap`` = the network's measured reach (:func:`reach`) rounded up to a multiple of 4, so
  tiles join exactly; training provenance and ``upscale evaluate --json`` metrics.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
from argparse import Namespace

import numpy as np
import torch

from ..data import photos, test_photos
from ..export import OPSET, export_onnx, git_commit, notice, write_fixture, write_manifest
from ..manifest import scale_out
from .evaluate import load_upscaler
from .model import SCALE, SIZE_MULTIPLE

#: input side of one pass in the service (larger inputs are tiled): 256 px in -> 1024 px out.
TILE = 256


def reach(model: torch.nn.Module, side: int = 192, seeds: int = 2) -> int:
    """The network's reach in input px: the largest distance (Chebyshev) from an output pixel's position to an
    input pixel that changes it, measured with gradients of the centre output pixels on random inputs
    (``seeds`` of them, ``side`` x ``side``). Tiles overlapping by at least this join without seams."""
    r = 0
    for s in range(seeds):
        x = (torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(s)) * 2 - 1).requires_grad_(True)
        y = model(x)
        c = side * SCALE // 2
        y[0, :, c - SCALE:c + SCALE, c - SCALE:c + SCALE].sum().backward()
        g = x.grad[0].abs().sum(0)
        ys, xs = torch.nonzero(g > 0, as_tuple=True)
        r = max(r, int(max((ys - side // 2).abs().max(), (xs - side // 2).abs().max())) + 1)
    return r


def make_fixture(model: torch.nn.Module, out_dir: str) -> dict:
    """Write the parity fixture (module docstring); returns its description."""
    img = test_photos.load("astronaut", short_side=128)
    a, b = img[10:42, 20:60], img[60:92, 40:80]
    x = (np.stack([a, b]).astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2).copy()
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy().astype(np.float32)
    return write_fixture(out_dir, x, y, "image", "image_out", "skimage astronaut, short side 128, crops [10:42,20:60] and [60:92,40:80], RGB")


def _normalization(a: dict) -> str:
    """The manifest's words for a run's ``shortcut`` (the PONO paper's Table 3 row)."""
    sc = a.get("shortcut") or ("pono_ms" if a["pono_ms"] else "none")
    if sc == "pono_dms":
        return (f"PONO after each downsampling conv; before each upsampling conv a Dynamic Moment Shortcut (PONO-DMS, Li et al. "
                f"2019, section 3.1): {a.get('dms_layers', 1)} conv {a.get('dms_kernel', 3)}x{a.get('dms_kernel', 3)} on (mu, sigma) "
                f"generating {'per-channel' if a.get('dms_multi', True) else 'one-channel'} beta and gamma; no other normalization")
    if sc == "ms":
        return "MS without PONO (mu and sigma re-injected, features not normalized; the paper's Table 3 ablation)"
    if sc == "pono_ms":
        return "PONO after each downsampling conv, MS before each upsampling conv (Li et al. 2019, section 3.1); no other normalization"
    return "none (ablation without PONO-MS)"


def summarize(ev: dict, shipped: str) -> dict:
    """Manifest ``metrics`` from ``upscale evaluate --json``: mean Y-PSNR / SSIM per input kind and method,
    the shipped row's gain over each baseline, and the per-photo tables."""
    out = {"protocol": ev["protocol"], "split": ev["split"], "photos": ev["photos"], "shipped": shipped}
    for kind, rows in ev["results"].items():
        out[kind] = {"y_psnr_db": {k: v["mean"]["psnr"] for k, v in rows.items()},
                     "y_ssim": {k: v["mean"]["ssim"] for k, v in rows.items()},
                     "per_photo": {k: v["per_photo"] for k, v in rows.items()}}
        if shipped in rows:
            me = rows[shipped]["mean"]["psnr"]
            out[kind]["gain_db"] = {k: round(me - v["mean"]["psnr"], 3) for k, v in rows.items() if k != shipped}
    return out


def main(args: Namespace) -> int:
    """CLI: ``python3 -m trainer upscale export runs/upscale-pono/best.pt --out-dir models/upscale-pono``."""
    ck = torch.load(args.checkpoint, map_location="cpu")
    a = ck["args"]
    model = load_upscaler(args.checkpoint)
    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "model.onnx")
    rewrites = export_onnx(model, onnx_path, (torch.zeros(1, 3, 32, 32),), ("image",), ("image_out",),
                {"image": {0: "batch", 2: "height", 3: "width"}, "image_out": {0: "batch", 2: "height4", 3: "width4"}})
    fixture = make_fixture(model, os.path.join(args.out_dir, "fixture"))
    r = reach(model)
    overlap = int(math.ceil(r / SIZE_MULTIPLE) * SIZE_MULTIPLE)
    collections = photos.parse_collections(a.get("photos"))
    train_set, val_set = photos.split(photos.index(collections))
    run_dir = os.path.dirname(args.checkpoint)
    curve = [json.loads(line) for line in open(os.path.join(run_dir, "curve.json"))] if os.path.exists(os.path.join(run_dir, "curve.json")) else []
    spec = lambda name, what: {"name": name, "layout": "NCHW", "dtype": "float32", "channels": 3, "range": [-1.0, 1.0],
                               "size_multiple": SIZE_MULTIPLE, "dynamic_dims": ["batch", "height", "width"], "description": what}
    manifest = {
        "name": args.name, "version": args.version, "task": "upscale",
        "description": "x4 photo upscaler (super-resolution) with PONO-MS (Li et al. 2019) on an EDSR-style body without "
                       "normalization, trained on real photographs with clean bicubic and Real-ESRGAN-style degraded "
                       "(blur, resize, noise, JPEG, twice) inputs, so it copes with compressed, noisy photos.",
        "onnx": {"file": "model.onnx", "sha256": photos.sha256(onnx_path), "opset": OPSET, "bytes": os.path.getsize(onnx_path),
                 "rewrites": rewrites},
        "inputs": [spec("image", "sRGB of the low-resolution photo as 2*v/255 - 1, N x 3 x H x W")],
        "outputs": [spec("image_out", "sRGB of the x4 photo as 2*v/255 - 1, N x 3 x 4H x 4W (round and clamp to uint8)")],
        "architecture": {"network": "encoder-decoder at the input resolution (two stride-2 levels, EDSR residual blocks, "
                                    "no normalization) + two pixel-shuffle x2 stages + bicubic x4 of the input (global residual)",
                         "nf": a["nf"], "n_mid": a["n_mid"], "n_lr": a["n_lr"],
                         "normalization": _normalization(a),
                         "shortcut": a.get("shortcut") or ("pono_ms" if a["pono_ms"] else "none"),
                         "reach_px": r, "parameters": sum(p.numel() for p in model.parameters())},
        "serving": {"default": args.default, "scale": SCALE, "tile": TILE, "tile_overlap": overlap},
        "training": {
            "task": "x4 super-resolution, pairs made from real photographs",
            "loss": "L1 on RGB",
            "degradation": (f"{a['clean_share']:.0%} clean PIL-bicubic x4 downscales, "
                            + (f"{a['light_share']:.0%} one-stage (degrade.light: a x4 resize with a random filter, JPEG 30-90 and "
                               "Gaussian noise 1-10/255 in random order), " if a.get("light_share") else "")
                            + "the rest Real-ESRGAN-style (Wang et al. 2021, section 3.1; trainer/upscale/degrade.py): blur, random "
                            "resize, Gaussian noise, JPEG 35-95, twice (p 0.8); the last run's shares (earlier runs: COMMAND)"),
            "data": {"packages": photos.packages_of(collections), "collections": list(collections),
                     "train_photos": photos.train_photo_records(train_set),
                     "validation_photos": [p.image_id for p in val_set],
                     "crops": f"{a['crop']} px HR crops from a pyramid with short sides {a['scales']}, random flips"},
            "command": args.command or open(os.path.join(run_dir, "..", os.path.basename(run_dir) + ".cmd")).read().strip()
            if os.path.exists(os.path.join(run_dir, "..", os.path.basename(run_dir) + ".cmd")) else args.command,
            "steps": ck["step"], "scale_out": scale_out(a), "steps_planned": a["steps"], "batch": a["batch"], "seed": a["seed"], "lr": a["lr"],
            "optimizer": "Adam(0.9, 0.99), linear decay over the second half", "ema": a["ema"],
            "device": a["device"], "threads": a["threads"], "wall_time_s": round(ck.get("elapsed_s", 0.0), 1),
            "selection": "EMA weights with the highest mean Y-PSNR gain over bicubic on 48 validation crops (clean and degraded)",
            "best": ck.get("best"), "validation_curve": curve,
            "git_commit": git_commit(), "torch": torch.__version__,
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
        "metrics": summarize(json.load(open(args.metrics)), "pono_ms") if args.metrics else {},
        "fixture": {"dir": "fixture", **fixture},
        "license": "Model weights: CC-BY-SA-4.0 (derived from CC-BY(-SA), GPL/LGPL and CC0 photographs; see NOTICE). Code: MIT.",
    }
    write_manifest(args.out_dir, manifest, notice(args.name, "a PONO-MS x4 upscaler", train_set))
    print(f"[export] {onnx_path} ({manifest['onnx']['bytes']} bytes), reach {r} px -> tile_overlap {overlap}, "
          f"fixture {fixture['input']['dims']} -> {fixture['output']['dims']}")
    return 0


def load_served(manifest: dict, checkpoint: str) -> torch.nn.Module:
    """The PyTorch upscaler an ``upscale`` model folder was exported from (registered in ``upscale/cli.py`` for
    :func:`trainer.registry.load_served`). Eval mode."""
    return load_upscaler(checkpoint)


def int8_sample(hwc: np.ndarray, i: int, seed: int, manifest: dict) -> dict[str, np.ndarray]:
    """One INT8 calibration input (registered ``int8_sample`` hook, :mod:`trainer.int8`): the x4-reduced photo crop in
    [-1, 1], NCHW float32; even samples clean bicubic, odd ones JPEG 50 + noise (``degrade.eval_degraded``)."""
    from . import degrade
    lr = degrade.bicubic_down(hwc) if i % 2 == 0 else degrade.eval_degraded(hwc, seed=i)  # both x4 down
    return {manifest["inputs"][0]["name"]: lr.transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1}
