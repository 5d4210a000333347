"""Export a trained translator: ONNX (opset 17; dynamic batch, height, width), a parity fixture,
the manifest and the NOTICE, into ``models/<name>/``.

* ``model.onnx``: input ``gray`` float32 N x 1 x H x W in [-1, 1] (BT.601 luma ``2Y - 1``; H, W
  multiples of 4), output ``rgb`` float32 N x 3 x H x W in [-1, 1].
* ``fixture/``: ``input.f32`` and ``output.f32`` (little-endian float32, C order) with
  ``fixture.json`` giving their dims: a real photo's luma (astronaut, 2 x 1 x 48 x 60: batch 2, two
  crops) and PyTorch's output for it. ``test/parity.test.ts`` checks onnxruntime-node against it.
* ``manifest.json``: see ``src/models/manifest.ts``; sha256 of the ONNX file, I/O spec, training
  provenance (data, command, steps, seed, git commit, wall time, device) and metrics.
* ``NOTICE``: attribution of every training photograph (author and licence from its package).
"""
from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import torch

from ..color import luma_u8, to_signed
from ..data import photos, test_photos
from ..export import OPSET, export_onnx, git_commit, notice, write_fixture, write_manifest
from ..manifest import scale_out
from .evaluate import load_checkpoint
from .model import SIZE_MULTIPLE


def make_fixture(model: torch.nn.Module, out_dir: str) -> dict:
    """Write the parity fixture (see module doc); returns its description."""
    img = test_photos.load("astronaut", short_side=128)
    a, b = img[10:58, 20:80], img[60:108, 40:100]
    x = np.stack([to_signed(luma_u8(a)), to_signed(luma_u8(b))])[:, None].astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy().astype(np.float32)
    return write_fixture(out_dir, x, y, "gray", "rgb",
                         "skimage astronaut, short side 128, crops [10:58,20:80] and [60:108,40:100], BT.601 luma")


def summarize_metrics(ev: dict, shipped: str = "pono_ms") -> dict:
    """Manifest ``metrics`` from ``colorize evaluate --json`` output: the mean PSNR, SSIM (and, where
    measured, colourfulness ratio and AuC) of every row, whether the shipped row beats each baseline on
    PSNR and SSIM, and the per-photo table."""
    res = ev["results"]
    out = {"test_set": f"{', '.join(test_photos.NAMES)}; short side {ev['short_side']} px; input BT.601 luma (uint8)",
           "shipped": shipped,
           "psnr_db": {k: v["mean"]["psnr"] for k, v in res.items()},
           "ssim": {k: v["mean"]["ssim"] for k, v in res.items()},
           "ssim_definition": "Gaussian window sigma 1.5, data range 255, mean over RGB",
           "per_photo": {k: v["per_photo"] for k, v in res.items()}}
    for key, what in (("colourfulness", "Hasler & Suesstrunk M3 of the output / of the original, mean over photos"),
                      ("auc", "area under the cumulative per-pixel ab-error curve, 0..150 (Zhang et al. 2016)")):
        if all(key in v["mean"] for v in res.values()):
            out[key] = {k: v["mean"][key] for k, v in res.items()}
            out[f"{key}_definition"] = what
    if shipped in res:
        me = res[shipped]["mean"]
        out["beats"] = {k: bool(me["psnr"] > v["mean"]["psnr"] and me["ssim"] > v["mean"]["ssim"])
                        for k, v in res.items() if k != shipped}
    return out


def main(args: Namespace) -> int:
    """CLI: ``python3 -m trainer colorize export runs/x/final.pt --out-dir models/colorize-pono --metrics m.json``."""
    ck = torch.load(args.checkpoint, map_location="cpu")
    model = load_checkpoint(args.checkpoint, args.chroma_gain)
    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, "model.onnx")
    export_onnx(model, onnx_path)
    fixture = make_fixture(model, args.fixture_dir or os.path.join(args.out_dir, "fixture"))
    a = ck["args"]
    collections = photos.parse_collections(a.get("photos"))
    train_set, val_set = photos.split(photos.index(collections))
    classify = a.get("loss", "l1") == "classify"
    metrics = summarize_metrics(json.load(open(args.metrics))) if args.metrics else {}
    if args.loss_comparison:
        lc = json.load(open(args.loss_comparison))["results"]
        metrics["loss_comparison"] = {
            "setup": "same PONO-MS network, data, 2500-step budget, seed and early stopping; L1 alone vs "
                     "L1 + 0.01 x PatchGAN (pix2pix's lambda_L1 = 100 : lambda_GAN = 1)",
            "psnr_db": {k: v["mean"]["psnr"] for k, v in lc.items()},
            "ssim": {k: v["mean"]["ssim"] for k, v in lc.items()},
            "best_val_l1": {k: json.load(open(os.path.join(d, "summary.json")))["best"]["val_l1"]
                            for k, d in (x.split("=", 1) for x in args.loss_runs)},
            "chosen": "L1 alone (better validation L1, and better PSNR and SSIM on the test photos)"}
    run_dir = os.path.dirname(args.checkpoint)
    summary_path = os.path.join(run_dir, "summary.json")
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    manifest = {
        "name": args.name,
        "version": args.version,
        "task": "translate",
        "description": ("Grayscale -> colour photo colorizer: CycleGAN/pix2pix ResNet body with PONO-MS (Li et al. 2019) "
                        "on Instance Normalization and the classification head of Zhang et al. 2016 (a distribution over "
                        "quantized ab, annealed-mean decoding in the graph), trained on real photographs." if classify else
                        "Grayscale -> colour photo colorizer: CycleGAN/pix2pix ResNet generator with PONO-MS "
                        "(Li et al. 2019) on Instance Normalization, trained on real photographs."),
        "onnx": {"file": "model.onnx", "sha256": photos.sha256(onnx_path), "opset": OPSET,
                 "bytes": os.path.getsize(onnx_path)},
        "inputs": [{"name": "gray", "layout": "NCHW", "dtype": "float32", "channels": 1, "range": [-1.0, 1.0],
                    "size_multiple": SIZE_MULTIPLE, "dynamic_dims": ["batch", "height", "width"],
                    "description": "BT.601 luma Y = 0.299R + 0.587G + 0.114B of the photo, as 2*Y/255 - 1"}],
        "outputs": [{"name": "rgb", "layout": "NCHW", "dtype": "float32", "channels": 3, "range": [-1.0, 1.0],
                     "size_multiple": SIZE_MULTIPLE, "dynamic_dims": ["batch", "height", "width"],
                     "description": "sRGB as 2*v/255 - 1; its BT.601 luma equals the input (chroma head)"}],
        "architecture": {"network": "ResNet generator (CycleGAN/pix2pix)", "ngf": a["ngf"], "n_blocks": a["n_blocks"],
                         "normalization": "IN + PONO after each downsampling conv, MS before each upsampling conv"
                         if a["pono_ms"] else "IN only",
                         "head": (f"MS(mu1) then Conv3x3 IN ReLU Conv1x1 -> {len(model.ab_bins)} logits over the in-gamut "
                                  f"ab bins (grid 10) at H/2; annealed mean T = {model.temperature} -> ab"
                                  + (f" x chroma gain {model.chroma_gain:g} (chosen on the validation photos)"
                                     if model.chroma_gain != 1.0 else "") + ", bilinear x2, "
                                  "L* from the input luma, Lab -> sRGB, chroma kept with the input luma (desaturated "
                                  "into the RGB cube, never clipped)" if classify else
                                  "7x7 conv + tanh predicting (Cb, Cr); fixed BT.601 YCbCr->RGB with the input luma"),
                         **({"ab_bins": len(model.ab_bins), "temperature": model.temperature,
                             "chroma_gain": model.chroma_gain} if classify else {}),
                         "parameters": sum(p.numel() for p in model.parameters())},
        "serving": {"default": args.default},
        "training": {
            "task": "grayscale -> colour, pairs derived from real photographs (input = BT.601 luma, uint8-rounded)",
            "loss": (("class-rebalanced cross-entropy over the ab bins (Zhang et al. 2016 eqs. 2-4: soft-encoding 5-NN "
                      "sigma 5, prior smoothed sigma 5, lambda 0.5; targets at H/2)" if classify else "L1")
                     + ("" if a["gan_weight"] == 0 else f" + {a['gan_weight']} x PatchGAN (LSGAN)")),
            "data": {"packages": photos.packages_of(collections), "collections": list(collections),
                     "train_photos": photos.train_photo_records(train_set),
                     "validation_photos": [p.image_id for p in val_set],
                     "split": "by whole image id (all resolutions of one wallpaper on one side)",
                     "crops": f"{a['crop']}px random crops from a pyramid with short sides {list(photos.SCALES)}, random horizontal flips"
                              + (f", per-crop gamma exp(U(-{a['luma_jitter']}, {a['luma_jitter']}))" if a.get("luma_jitter") else ""),
                     "licences": "per photo above, from each package's DEP-5 copyright file or KDE metadata.json"},
            "command": args.command or "/usr/bin/python3 -m trainer colorize train " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in a.items() if k in ("out", "steps", "ngf", "n_blocks", "threads", "seed")),
            "steps": summary.get("steps", ck["step"]), "scale_out": scale_out(a), "batch": a["batch"], "ema": a.get("ema"), "seed": a["seed"], "lr": a["lr"], "optimizer": "Adam(0.5, 0.999), linear decay over the second half",
            "device": a["device"], "threads": a["threads"],
            "wall_time_s": summary.get("wall_time_s", round(ck.get("elapsed_s", 0.0), 1)),
            "final_log": summary.get("final"),
            "early_stopping": {"checkpoint": os.path.basename(args.checkpoint), "selected_step": ck["step"],
                               "selection": "EMA weights with the lowest validation " + ("class-rebalanced CE" if classify else "L1")
                                            + " on the held-out validation photos",
                               "best": ck.get("best"), "gray_copy_val_l1": summary.get("gray_copy_val_l1"),
                               "steps_run": summary.get("steps")},
            "git_commit": git_commit(), "torch": torch.__version__,
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        },
        "metrics": metrics,
        "fixture": {"dir": "fixture", **fixture},
        "license": "Model weights: CC-BY-SA-4.0 (derived from CC-BY(-SA), GPL/LGPL and CC0 photographs; see NOTICE). Code: MIT.",
    }
    write_manifest(args.out_dir, manifest, notice(args.name, "a PONO-MS colorizer", train_set))
    print(f"[export] {onnx_path} ({manifest['onnx']['bytes']} bytes, sha256 {manifest['onnx']['sha256'][:12]}…), "
          f"fixture {fixture['input']['dims']} -> {fixture['output']['dims']}, manifest written")
    return 0


def load_served(manifest: dict, checkpoint: str) -> torch.nn.Module:
    """The PyTorch colorizer a ``translate`` model folder was exported from (registered in ``colorize/cli.py`` for
    :func:`trainer.registry.load_served`): the hint network (inputs gray + hints), the hybrid when the manifest
    records ``architecture.solve``, else the automatic colorizer with its chroma gain. Eval mode."""
    if "hints" in [i["name"] for i in manifest["inputs"]]:
        from .hints import load_hinted
        hinted = load_hinted(checkpoint)[0]
        if "solve" not in manifest["architecture"]:
            return hinted
        from .hybrid import HybridColorizer, SolveConfig
        solve = dict(manifest["architecture"]["solve"], iters=tuple(manifest["architecture"]["solve"]["iters"]))
        return HybridColorizer(hinted, SolveConfig(**solve)).eval()
    return load_checkpoint(checkpoint, manifest["architecture"].get("chroma_gain", 1.0))


def int8_sample(hwc: np.ndarray, i: int, seed: int, manifest: dict) -> dict[str, np.ndarray]:
    """One INT8 calibration input (registered ``int8_sample`` hook, :mod:`trainer.int8`): BT.601 luma of the crop
    (uint8-rounded) in [-1, 1]; for a hints model also ``hints`` (zeros for even samples, 10 fixed patches of the
    true colours for odd ones). NCHW float32."""
    names = [x["name"] for x in manifest["inputs"]]
    feeds = {names[0]: to_signed(luma_u8(hwc))[None, None]}
    if "hints" in names:
        from .hints import fixed_hints
        from .quantize import lab_ab
        h, w = hwc.shape[:2]
        feeds["hints"] = (fixed_hints(torch.from_numpy(lab_ab(hwc))[None], 10, seed=seed + i) if i % 2 else
                          torch.zeros(1, 3, h, w)).numpy().astype(np.float32)
    return feeds


def int8_score(samples: list) -> dict:
    """INT8 quality hook (registered ``int8_score``, :func:`trainer.int8.scores`): mean hue agreement
    (:func:`~trainer.colorize.quantize.hue_agreement`) of the fp32 and the int8 outputs against the true photos.
    ``samples``: [(feeds, target 1 x 3 x H x W in [-1, 1], {"fp32": output, "int8": output})]."""
    from .quantize import hue_agreement
    u8 = lambda a: ((a[0].transpose(1, 2, 0) + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    out = {}
    for p in ("fp32", "int8"):
        v = [hue_agreement(u8(o[p]), u8(t)) for _, t, o in samples]
        out[f"hue_{p}"] = round(float(np.nanmean(v)), 4)
    out["hue_loss"] = round(out["hue_fp32"] - out["hue_int8"], 4)
    return out
