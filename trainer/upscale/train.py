"""Training loop of the x4 upscaler (:mod:`trainer.upscale.model`), L1 on RGB.

Pairs: HR = random ``--crop`` px crops (flips, scale jitter) of the real photos of ``--photos``
(:class:`trainer.data.photos.PhotoCrops`; validation photos never trained on), LR = with probability
``--clean-share`` the clean bicubic x4 downscale, with probability ``--light-share`` a one-stage resize + JPEG +
noise (:func:`trainer.upscale.degrade.light`), else the Real-ESRGAN-style random degradation
(:func:`trainer.upscale.degrade.real_world`), made per crop on the CPU from a seeded generator. Tensors are
float32 NCHW RGB in [-1, 1]: LR B x 3 x c/4 x c/4, HR B x 3 x c x c.

Adam (lr ``--lr``, betas 0.9/0.99), constant for the first half then linear decay (pix2pix schedule), EMA of
the weights (decay ``--ema``) for validation and export.

Validation every ``--log-every`` steps on ``--val-crops`` fixed crops of ``--val-crop`` px from the held-out
validation photos, twice: clean (bicubic x4 down) and degraded (:func:`~trainer.upscale.degrade.eval_degraded`:
JPEG 50 + noise 5/255): Y-PSNR with a 4 px border (:func:`trainer.metrics.sr_scores`) of the EMA model and of
PIL bicubic upscaling of the same input. ``best.pt`` keeps the EMA weights with the highest mean of the two
gains over bicubic; ``curve.json`` every record.

Mean-of-dB over small crops flatters denoising (a smooth crop gains 3 dB, a textured one little, and each counts
once): preview.3 gained +1.46 dB on degraded validation crops but +0.69 on whole validation photos and +0.51 on
the test photos. ``--val-photos N`` therefore also scores the first N whole validation photos (short side
``--val-photo-side``) as the test protocol does: ``val_photo_clean_gain`` (Y-PSNR over bicubic) and
``val_photo_degraded_gain`` (over Lanczos), their mean ``val_photo_gain``; ``--select photos`` keeps ``best.pt``
by that mean instead of the crops'. Checkpoints (model, EMA, optimizer, step, RNG states) every
``--ckpt-every`` steps; ``--resume`` continues in the same data order.
"""
from __future__ import annotations

import copy
import json
import os
import time
from argparse import Namespace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data import photos
from ..loop import ema_update, lr_at, stop_step
from ..metrics import sr_scores
from . import degrade
from .model import SCALE, build


def to_tensor(u8: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 (or N x H x W x 3) -> float32 (N x) 3 x H x W in [-1, 1]."""
    t = torch.from_numpy(np.array(u8, dtype=np.float32)) / 127.5 - 1.0
    return t.permute(2, 0, 1) if t.dim() == 3 else t.permute(0, 3, 1, 2)


def to_u8(t: torch.Tensor) -> np.ndarray:
    """float 3 x H x W in [-1, 1] -> H x W x 3 uint8 (rounded, clipped), as the service quantizes."""
    return ((t.detach().permute(1, 2, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)


def upscale_u8(model: torch.nn.Module, lr: np.ndarray) -> np.ndarray:
    """Run the upscaler on one LR image: h x w x 3 uint8 (multiples of 4) -> 4h x 4w x 3 uint8."""
    with torch.no_grad():
        return to_u8(model(to_tensor(lr)[None])[0])


def bicubic_up(lr: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """PIL bicubic upscaling: h x w x 3 uint8 -> (scale h) x (scale w) x 3 uint8."""
    return np.asarray(Image.fromarray(lr).resize((lr.shape[1] * scale, lr.shape[0] * scale), Image.BICUBIC))


def validate(model: torch.nn.Module, val: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """Mean Y-PSNR (4 px border) of ``model`` and of bicubic on ``val`` = [(hr, clean lr, degraded lr)]."""
    rec = {}
    for kind, i in (("clean", 1), ("degraded", 2)):
        ours = [sr_scores(upscale_u8(model, v[i]), v[0], SCALE)[0] for v in val]
        bic = [sr_scores(bicubic_up(v[i]), v[0], SCALE)[0] for v in val]
        rec[f"val_{kind}_psnr"] = round(float(np.mean(ours)), 3)
        rec[f"val_{kind}_gain"] = round(float(np.mean(ours) - np.mean(bic)), 3)
    rec["val_gain"] = round((rec["val_clean_gain"] + rec["val_degraded_gain"]) / 2, 3)
    return rec


def lanczos_up(lr: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """PIL Lanczos (a = 3) upscaling: h x w x 3 uint8 -> (scale h) x (scale w) x 3 uint8 (the evaluation's baseline)."""
    return np.asarray(Image.fromarray(lr).resize((lr.shape[1] * scale, lr.shape[0] * scale), Image.LANCZOS))


def validate_photos(model: torch.nn.Module, val: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """Whole-photo validation (module docstring) on ``val`` = [(hr, clean lr, degraded lr)]: mean Y-PSNR (4 px
    border) gain of ``model`` over bicubic (clean) and over Lanczos (degraded), in dB, and their mean."""
    rec = {}
    for kind, i, base in (("clean", 1, bicubic_up), ("degraded", 2, lanczos_up)):
        gains = [sr_scores(upscale_u8(model, v[i]), v[0], SCALE)[0] - sr_scores(base(v[i]), v[0], SCALE)[0] for v in val]
        rec[f"val_photo_{kind}_gain"] = round(float(np.mean(gains)), 3)
    rec["val_photo_gain"] = round((rec["val_photo_clean_gain"] + rec["val_photo_degraded_gain"]) / 2, 3)
    return rec


def train(args: Namespace) -> dict:
    """Run (or resume) one training job (module docstring); returns a summary (also ``<out>/summary.json``).
    Raises FileNotFoundError when the photos are not installed, ValueError for a crop not a multiple of 16."""
    if args.crop % 16 or args.val_crop % 16:
        raise ValueError("--crop and --val-crop must be multiples of 16")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    collections = photos.parse_collections(args.photos)
    train_set, val_set = photos.split(photos.index(collections))
    print(f"[data] {len(train_set)} training / {len(val_set)} validation photos from {','.join(collections)}; "
          f"HR crops {args.crop}px (LR {args.crop // SCALE}px), clean share {args.clean_share}, light share {args.light_share}; loading ...", flush=True)
    scales = tuple(int(s) for s in args.scales.split(","))
    crops = photos.PhotoCrops(train_set, crop=args.crop, scales=scales, seed=args.seed)
    deg_rng = np.random.default_rng(args.seed + 1)
    vb = photos.PhotoCrops(val_set, crop=args.val_crop, scales=scales, seed=12345).batch(args.val_crops)
    val = []
    for i, c in enumerate(vb.permute(0, 2, 3, 1).numpy()):
        val.append((c, degrade.bicubic_down(c), degrade.eval_degraded(c, seed=i)))

    val_photos = []
    if getattr(args, "val_photos", 0):
        from .evaluate import photo_set
        for i, hr in enumerate(list(photo_set("val", args.val_photo_side).values())[: args.val_photos]):
            val_photos.append((hr, degrade.bicubic_down(hr), degrade.eval_degraded(hr, seed=i)))
    select = "val_photo_gain" if getattr(args, "select", "crops") == "photos" else "val_gain"
    if select == "val_photo_gain" and not val_photos:
        raise ValueError("--select photos needs --val-photos N > 0")

    def validate_all(m: torch.nn.Module) -> dict:
        return validate(m, val) | (validate_photos(m, val_photos) if val_photos else {})

    if getattr(args, "shortcut", None) is None:
        args.shortcut = "pono_ms" if args.pono_ms else "none"
    args.pono_ms = args.shortcut != "none"
    args.dms_multi = getattr(args, "dms_channels", "multi") == "multi"
    args.dms_layers = getattr(args, "dms_layers", 1)
    args.dms_kernel = getattr(args, "dms_kernel", 3)
    model = build(vars(args))
    if getattr(args, "init", None) and not (args.resume and os.path.exists(os.path.join(args.out, "checkpoint.pt"))):
        ck = torch.load(args.init, map_location="cpu")
        sd = {k: v.float() if v.is_floating_point() else v for k, v in ck.get("ema", ck.get("model")).items()}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if unexpected or any(not k.startswith("dms") for k in missing):
            raise ValueError(f"--init {args.init}: weights do not fit (missing {missing}, unexpected {unexpected})")
        print(f"[init] from {args.init} (step {ck.get('step')}); new: {sorted({k.split('.')[0] for k in missing}) or 'none'}", flush=True)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    best = {select: -float("inf"), "step": 0}
    start, elapsed_before = 0, 0.0
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()})
        ema.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck["ema"].items()})
        opt.load_state_dict(ck["opt"])
        best, start, elapsed_before = ck["best"], ck["step"], ck["elapsed_s"]
        crops.rng.bit_generator.state = ck["data_rng"]
        deg_rng.bit_generator.state = ck["deg_rng"]
        torch.set_rng_state(ck["torch_rng"])
        print(f"[resume] from step {start}", flush=True)
    else:
        rec = validate_all(ema)
        print(f"[val] step {start} ({'the --init weights' if getattr(args, 'init', None) else '= bicubic'}): clean {rec['val_clean_psnr']:.2f} dB, degraded {rec['val_degraded_psnr']:.2f} dB", flush=True)
    print(f"[model] {sum(p.numel() for p in model.parameters())} parameters, shortcut {args.shortcut}"
          + (f" ({'multi' if args.dms_multi else 'one'}-channel, {args.dms_layers} conv {args.dms_kernel}x{args.dms_kernel})"
             if args.shortcut == "pono_dms" else ""), flush=True)

    def save(step: int, elapsed: float) -> None:
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "best": best,
                    "data_rng": crops.rng.bit_generator.state, "deg_rng": deg_rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "step": step, "elapsed_s": elapsed, "args": vars(args)}, tmp)
        os.replace(tmp, ckpt_path)

    t0 = t_last = time.time()
    n_last = 0
    stop = stop_step(args)
    model.train()
    for step in range(start, stop):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr)
        hr_u8 = crops.batch(args.batch).permute(0, 2, 3, 1).numpy()
        lr_u8 = np.stack([degrade.make_lr(h, deg_rng, args.clean_share, args.light_share) for h in hr_u8])
        x, y = to_tensor(lr_u8), to_tensor(hr_u8)
        loss = F.l1_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update(ema, model, step, args.ema)
        n_last += args.batch
        done = step + 1
        if done % args.log_every == 0 or done == stop:
            rec = {"step": done, "loss": round(loss.item(), 5), **validate_all(ema)}
            now = time.time()
            ips = n_last / (now - t_last)
            elapsed = elapsed_before + now - t0
            if rec[select] > best.get(select, -float("inf")):
                best = {k: rec[k] for k in rec if k.startswith("val_")} | {"step": done}
                torch.save({"model": ema.state_dict(), "args": vars(args), "step": done, "best": best, "elapsed_s": elapsed},
                           os.path.join(args.out, "best.pt"))
            with open(os.path.join(args.out, "curve.json"), "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(f"[train] step {done}/{args.steps} l1 {rec['loss']:.4f} val clean {rec['val_clean_psnr']:.2f} dB "
                  f"({rec['val_clean_gain']:+.2f} vs bicubic) degraded {rec['val_degraded_psnr']:.2f} dB "
                  f"({rec['val_degraded_gain']:+.2f})"
                  + (f" photos clean {rec['val_photo_clean_gain']:+.2f} degraded {rec['val_photo_degraded_gain']:+.2f} vs Lanczos" if val_photos else "")
                  + f" (best {best[select]:+.3f} @ {best['step']}) {ips:.1f} img/s "
                  f"lr {lr_at(step, args.steps, args.lr):.1e} elapsed {elapsed/60:.1f}min "
                  f"ETA {(args.steps - done) * args.batch / max(ips, 1e-9) / 60:.1f}min", flush=True)
            t_last, n_last = now, 0
        if done % args.ckpt_every == 0 or done == stop:
            save(done, elapsed_before + time.time() - t0)
    wall = elapsed_before + time.time() - t0
    summary = {"steps": stop, "wall_time_s": round(wall, 1), "best": best, "args": vars(args),
               "train_photos": len(train_set), "validation_photos": len(val_set)}
    if stop < args.steps:
        print(f"[stop] --stop-at {stop}: checkpoint written (resume with --resume)", flush=True)
    else:
        torch.save({"model": ema.state_dict(), "args": vars(args), "step": stop, "elapsed_s": wall}, os.path.join(args.out, "final.pt"))
        print(f"[done] {stop} steps in {wall/60:.1f} min; best mean gain {best[select]:+.3f} dB at step {best['step']}", flush=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary
