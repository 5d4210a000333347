"""Export a trained inpainter into ``models/<name>/``: ONNX (opset 17, dynamic batch/height/width;
AN's self-sampling is off in eval mode, so the graph has no random op), a parity fixture, the
manifest and the NOTICE.

* inputs ``image`` float32 N x 3 x H x W in [-1, 1] and ``mask`` float32 N x 1 x H x W in {0, 1}
  (1 = hole), H and W multiples of 4 (8 for fill-refine); output ``image_out`` float32 N x 3 x H x W in [-1, 1], already
  composited (known pixels equal the input).
* ``fixture/``: a real photo crop (astronaut, 1 x 3 x 64 x 80) with a seeded mask, and PyTorch's output.

Usage: ``/usr/bin/python3 -m trainer inpaint export runs/inpaint-an/best.pt --out-dir models/inpaint-an
--metrics runs/inpaint-metrics.json --command "..." [--texture]`` (``--texture``: append
:class:`~trainer.inpaint.texture.TextureTransfer` with its chosen settings to the graph; inpaint-an 2.0.0).
"""
from __future__ import annotations

from argparse import Namespace
import datetime as dt
import json
import os

import numpy as np
import torch

from ..color import to_signed
from ..data import photos, test_photos
from .data import random_mask
from ..export import OPSET, export_onnx, git_commit, notice, write_manifest
from ..manifest import scale_out
from .model import FILL_REFINE_MULTIPLE, SIZE_MULTIPLE
from .texture import TextureTransfer, texture_params
from .train import build_model


class _Served(torch.nn.Module):
    """The served graph: (image, mask) -> composited image (the coarse output is dropped); with
    ``flip_tta`` the mean of the result and the mirrored result of the mirrored input (two passes); with
    ``texture`` (the keyword arguments of :class:`~trainer.inpaint.texture.TextureTransfer`, as the manifest's
    ``architecture.texture`` records them) the fill's high band is then borrowed from the known photo."""

    def __init__(self, net: torch.nn.Module, flip_tta: bool = False, texture: dict | None = None) -> None:
        super().__init__()
        self.net, self.flip_tta = net, flip_tta
        self.texture = TextureTransfer(**texture).eval() if texture is not None else None

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.net.flip_averaged(image, mask) if self.flip_tta else self.net(image, mask)[1]
        return self.texture(out, mask) if self.texture is not None else out


def main(a: Namespace) -> int:
    """The ``inpaint export`` verb (options: ``trainer/inpaint/cli.py``); returns the exit status."""
    ck = torch.load(a.checkpoint, map_location="cpu")
    net = build_model(ck["args"])
    net.load_state_dict(ck["model"])
    texture = texture_params() if a.texture else None
    served = _Served(net.eval(), a.flip_tta, texture).eval()
    os.makedirs(os.path.join(a.out_dir, "fixture"), exist_ok=True)
    onnx_path = os.path.join(a.out_dir, "model.onnx")
    export_onnx(served, onnx_path, (torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)), ("image", "mask"), ("image_out",))

    img = test_photos.load("astronaut", short_side=128)[20:84, 24:104]
    x = to_signed(img).transpose(2, 0, 1)[None].astype(np.float32)
    m = random_mask(64, 80, np.random.default_rng(7)).astype(np.float32)[None, None]
    with torch.no_grad():
        y = served(torch.from_numpy(x), torch.from_numpy(m)).numpy().astype(np.float32)
    fx = os.path.join(a.out_dir, "fixture")
    x.astype("<f4").tofile(os.path.join(fx, "image.f32"))
    m.astype("<f4").tofile(os.path.join(fx, "mask.f32"))
    y.astype("<f4").tofile(os.path.join(fx, "output.f32"))
    fixture = {"source": "skimage astronaut, short side 128, crop [20:84, 24:104], mask random_mask(seed 7)",
               "inputs": [{"name": "image", "dims": list(x.shape), "file": "image.f32"},
                          {"name": "mask", "dims": list(m.shape), "file": "mask.f32"}],
               "output": {"name": "image_out", "dims": list(y.shape), "file": "output.f32", "dtype": "float32-le"},
               "tolerance_max_abs": 1e-4, "torch_version": torch.__version__}
    json.dump(fixture, open(os.path.join(fx, "fixture.json"), "w"), indent=2)

    args = ck["args"]
    fill_refine = args.get("arch", "two-stage") == "fill-refine"
    collections = photos.parse_collections(args.get("photos"))
    train_set, val_set = photos.split(photos.index(collections))
    multiple = FILL_REFINE_MULTIPLE if fill_refine else SIZE_MULTIPLE
    summary_path = os.path.join(os.path.dirname(a.checkpoint), "summary.json")
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    spec = lambda name, ch, rng, desc: {"name": name, "layout": "NCHW", "dtype": "float32", "channels": ch, "range": rng,
                                        "size_multiple": multiple, "dynamic_dims": ["batch", "height", "width"],
                                        "description": desc}
    manifest = {
        "name": a.name, "version": a.version, "task": "inpaint",
        "description": (("Push-pull fill refined at full resolution by a U-Net with Attentive Normalization (Wang et al. "
                         "2020) and an image-wide dilated/global context at H/8" if args["norm"] == "an" else
                         "Push-pull fill refined by a U-Net with IN in AN's place (the AN ablation)") if fill_refine else
                        ("Two-stage (coarse -> refine) inpainter with Attentive Normalization (Wang et al. 2020) in the "
                         "refinement stage" if args["norm"] == "an" else "Two-stage inpainter with IN (AN ablation)"))
                       + ("; then texture transfer: the fill's high band borrowed block by block from the known photo, "
                          "guided by the fill (trainer/inpaint/texture.py)" if texture else ""),
        "onnx": {"file": "model.onnx", "sha256": photos.sha256(onnx_path), "opset": OPSET, "bytes": os.path.getsize(onnx_path)},
        "inputs": [spec("image", 3, [-1.0, 1.0], "sRGB as 2*v/255 - 1 (hole pixels are ignored)"),
                   spec("mask", 1, [0.0, 1.0], "1 = hole (fill), 0 = keep")],
        "outputs": [spec("image_out", 3, [-1.0, 1.0], "composited: generated in the hole, the input elsewhere")],
        "architecture": {"arch": args.get("arch", "two-stage"), "width": args["width"], "norm": args["norm"], "entities": args["entities"],
                         "parameters": sum(q.numel() for q in net.parameters()),
                         **({"texture": texture} if texture else {})},
        "serving": {"default": a.default, "working_max_side": a.working_max_side, "flip_tta": a.flip_tta},
        "training": {"task": ("inpainting of user-like masks (boxes 15-30 % of each side, 8-13 px strokes, both; sized for "
                              "~384-px photos) and 10-50 % free-form masks on photo crops" if fill_refine else
                              "inpainting of random 10-50 % rectangle/stroke masks on photo crops"),
                     "loss": (f"mean |out - y| over the hole + {args['lambda_o']} x AN orthogonality (eq. 1)" if fill_refine else
                              f"L1 (coarse) + L1 (refined) + {args['lambda_o']} x AN orthogonality (eq. 1)")
                             + (f" + {args['adv_weight']} x PatchGAN LSGAN adversarial" if args.get("adv_weight") else ""),
                     "data": {"packages": photos.packages_of(collections), "collections": list(collections),
                              "train_photos": photos.train_photo_records(train_set, sha=False),
                              "validation_photos": [q.image_id for q in val_set]},
                     "command": a.command, "steps": summary.get("steps", ck["step"]), "scale_out": scale_out(args), "selected_step": ck["step"], "best": ck.get("best"),
                     "batch": args["batch"], "crop": args["crop"], "seed": args["seed"], "lr": args["lr"], "ema": args["ema"],
                     "device": args["device"], "threads": args["threads"], "wall_time_s": summary.get("wall_time_s"),
                     # A fine-tuning run (--init) records where its weights started; its steps/wall time are its own.
                     "init": args.get("init"),
                     "git_commit": git_commit(), "torch": torch.__version__,
                     "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
        "metrics": {"native": json.load(open(a.metrics)) if a.metrics else {},
                    **({"served_working_side": json.load(open(a.metrics_served))} if a.metrics_served else {})},
        "fixture": {"dir": "fixture", **fixture},
        "license": "Model weights: CC-BY-SA-4.0 (derived from the photographs in NOTICE). Code: MIT.",
    }
    write_manifest(a.out_dir, manifest, notice(a.name, "an Attentive Normalization inpainter", train_set))
    print(f"[export] {onnx_path} ({manifest['onnx']['bytes']} bytes), fixture, manifest written")
    return 0



def load_served(manifest: dict, checkpoint: str) -> torch.nn.Module:
    """The served inpainter (:class:`_Served`: flip TTA and texture transfer as the manifest says) an ``inpaint``
    model folder was exported from (registered in ``inpaint/cli.py`` for :func:`trainer.registry.load_served`)."""
    ck = torch.load(checkpoint, map_location="cpu")
    net = build_model(ck["args"])
    net.load_state_dict(ck["model"])
    return _Served(net.eval(), bool(manifest["serving"].get("flip_tta")), manifest["architecture"].get("texture")).eval()


def int8_sample(hwc: np.ndarray, i: int, seed: int, manifest: dict) -> dict[str, np.ndarray]:
    """One INT8 calibration input (registered ``int8_sample`` hook, :mod:`trainer.int8`): the crop in [-1, 1] and a
    10-50 % free-form hole mask (1 = hole) from ``(seed, i)``. NCHW float32."""
    from .data import random_mask
    h, w = hwc.shape[:2]
    names = [x["name"] for x in manifest["inputs"]]
    return {names[0]: hwc.transpose(2, 0, 1)[None].astype(np.float32) / 127.5 - 1,
            "mask": np.asarray(random_mask(h, w, np.random.default_rng([seed, i])), np.float32)[None, None]}


def int8_score(samples: list) -> dict:
    """INT8 quality hook (registered ``int8_score``, :func:`trainer.int8.scores`): the detail ratio in the hole
    (:func:`~trainer.inpaint.adversarial.detail_ratio`, pooled) of the fp32 and int8 outputs.
    ``samples``: [(feeds with ``mask``, target 1 x 3 x H x W in [-1, 1], {"fp32": output, "int8": output})]."""
    from .adversarial import detail_ratio
    t = torch.from_numpy(np.concatenate([s[1] for s in samples]))
    m = torch.from_numpy(np.concatenate([s[0]["mask"] for s in samples]))
    out = {f"detail_{p}": round(float(detail_ratio(torch.from_numpy(np.concatenate([s[2][p] for s in samples])), t, m)), 4)
           for p in ("fp32", "int8")}
    out["detail_loss"] = round(out["detail_fp32"] - out["detail_int8"], 4)
    return out
