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
import functools
import json
import os
import time
from argparse import Namespace

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed
from ..data import photos, stream
from ..loop import ema_update, lr_at, stop_step
from ..metrics import sr_scores
from . import degrade
from .model import SCALE, build
from .pairs import bicubic_up, lanczos_up, photo_set, to_tensor, to_u8, upscale_u8  # noqa: F401 (re-exported)


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


def validate_photos(model: torch.nn.Module, val: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """Whole-photo validation (module docstring) on ``val`` = [(hr, clean lr, degraded lr)]: mean Y-PSNR (4 px
    border) gain of ``model`` over bicubic (clean) and over Lanczos (degraded), in dB, and their mean."""
    rec = {}
    for kind, i, base in (("clean", 1, bicubic_up), ("degraded", 2, lanczos_up)):
        gains = [sr_scores(upscale_u8(model, v[i]), v[0], SCALE)[0] - sr_scores(base(v[i]), v[0], SCALE)[0] for v in val]
        rec[f"val_photo_{kind}_gain"] = round(float(np.mean(gains)), 3)
    rec["val_photo_gain"] = round((rec["val_photo_clean_gain"] + rec["val_photo_degraded_gain"]) / 2, 3)
    return rec


def make_pair(k: int, hr: torch.Tensor, seed: int, clean_share: float, light_share: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Training pair of sample ``k`` of an indexed run (:mod:`trainer.data.stream`): uint8 3 x c x c HR crop ->
    (LR float32 3 x c/4 x c/4, HR float32 3 x c x c) in [-1, 1], the degradation drawn from ``(seed + 1, k)``."""
    hr_u8 = hr.permute(1, 2, 0).numpy()
    lr_u8 = degrade.make_lr(hr_u8, stream.sample_rng(seed + 1, k, 1), clean_share, light_share)
    return to_tensor(lr_u8), to_tensor(hr_u8)


def train(args: Namespace) -> dict:
    """Run (or resume) one training job (module docstring); returns a summary (also ``<out>/summary.json``).
    Under torchrun each process computes its share of the global ``--batch`` (:mod:`trainer.distributed`); rank 0
    validates, logs and writes the checkpoints.

    Raises FileNotFoundError when the photos are not installed, ValueError for a crop not a multiple of 16 or a
    batch the world size does not divide."""
    if args.crop % 16 or args.val_crop % 16:
        raise ValueError("--crop and --val-crop must be multiples of 16")
    collections = photos.parse_collections(args.photos)
    rt, share = distributed.start(args, indexed=photos.is_streamed(collections))
    log = rt.print
    train_set, val_set = photos.split(photos.index(collections))
    log(f"[data] {len(train_set)} training / {len(val_set)} validation photos from {','.join(collections)}"
        f"{' (streamed from disk)' if photos.is_streamed(collections) else ''}; "
        f"HR crops {args.crop}px (LR {args.crop // SCALE}px), clean share {args.clean_share}, light share {args.light_share}; loading ...")
    log(f"[run] {rt.describe(args.batch)}, lr {args.lr}")
    scales = tuple(int(s) for s in args.scales.split(","))
    crops = photos.training_source(train_set, collections, args.crop, scales, args.seed)
    deg_rng = np.random.default_rng(args.seed + 1)
    val, val_photos = [], []  # rank 0 validates
    if rt.main:
        vb = photos.PhotoCrops(val_set, crop=args.val_crop, scales=scales, seed=12345).batch(args.val_crops)
        for i, c in enumerate(vb.permute(0, 2, 3, 1).numpy()):
            val.append((c, degrade.bicubic_down(c), degrade.eval_degraded(c, seed=i)))
    if rt.main and getattr(args, "val_photos", 0):
        for i, hr in enumerate(list(photo_set("val", args.val_photo_side).values())[: args.val_photos]):
            val_photos.append((hr, degrade.bicubic_down(hr), degrade.eval_degraded(hr, seed=i)))
    select = "val_photo_gain" if getattr(args, "select", "crops") == "photos" else "val_gain"
    if select == "val_photo_gain" and rt.main and not val_photos:
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
        log(f"[init] from {args.init} (step {ck.get('step')}); new: {sorted({k.split('.')[0] for k in missing}) or 'none'}")
    model.to(rt.device)
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
        if not rt.indexed:  # one process, its own sampler: continue the same data order
            crops.rng.bit_generator.state = ck["data_rng"]
            deg_rng.bit_generator.state = ck["deg_rng"]
            torch.set_rng_state(ck["torch_rng"])
        log(f"[resume] from step {start} (written by {ck['args'].get('world_size', 1)} process(es))")
    elif rt.main:
        rec = validate_all(ema)
        log(f"[val] step {start} ({'the --init weights' if getattr(args, 'init', None) else '= bicubic'}): clean {rec['val_clean_psnr']:.2f} dB, degraded {rec['val_degraded_psnr']:.2f} dB")
    log(f"[model] {sum(p.numel() for p in model.parameters())} parameters, shortcut {args.shortcut}"
          + (f" ({'multi' if args.dms_multi else 'one'}-channel, {args.dms_layers} conv {args.dms_kernel}x{args.dms_kernel})"
             if args.shortcut == "pono_dms" else ""))

    def save(step: int, elapsed: float) -> None:
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "best": best,
                    "data_rng": getattr(crops, "rng", deg_rng).bit_generator.state, "deg_rng": deg_rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "step": step, "elapsed_s": elapsed, "args": vars(args)}, tmp)
        os.replace(tmp, ckpt_path)

    t0 = t_last = time.time()
    n_last = 0
    stop = stop_step(args)
    batches = (stream.IndexedBatches(crops, functools.partial(make_pair, seed=args.seed, clean_share=args.clean_share,
                                                              light_share=args.light_share),
                                     args.batch, share, start, stop, args.workers) if rt.indexed else None)
    net = rt.wrap(model)
    model.train()
    for step in range(start, stop):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr)
        if batches is not None:
            x, y = batches.next()
        else:
            hr_u8 = crops.batch(args.batch).permute(0, 2, 3, 1).numpy()
            lr_u8 = np.stack([degrade.make_lr(h, deg_rng, args.clean_share, args.light_share) for h in hr_u8])
            x, y = to_tensor(lr_u8), to_tensor(hr_u8)
        x, y = x.to(rt.device), y.to(rt.device)
        with rt.autocast():
            out = net(x)
        loss = F.l1_loss(out.float(), y)
        rt.step(loss, opt)
        ema_update(ema, model, step, args.ema)
        n_last += args.batch
        done = step + 1
        if done % args.log_every == 0 or done == stop:
            loss_all = rt.mean(loss.item())
            skipped = rt.record(args.batch, batches=batches)["skipped_files"]
        if rt.main and (done % args.log_every == 0 or done == stop):
            rec = {"step": done, "loss": round(loss_all, 5), **validate_all(ema)}
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
                  f"ETA {(args.steps - done) * args.batch / max(ips, 1e-9) / 60:.1f}min"
                  + (f" skipped files {skipped}" if skipped else "") + f" rss {distributed.rss_mib():.0f} MiB", flush=True)
            t_last, n_last = now, 0
        if rt.main and (done % args.ckpt_every == 0 or done == stop):
            save(done, elapsed_before + time.time() - t0)
    wall = elapsed_before + time.time() - t0
    summary = {"steps": stop, "wall_time_s": round(wall, 1), "best": best, "args": vars(args),
               "train_photos": len(train_set), "validation_photos": len(val_set), **rt.record(args.batch, args.lr, batches)}
    if rt.main:
        if stop < args.steps:
            log(f"[stop] --stop-at {stop}: checkpoint written (resume with --resume)")
        else:
            torch.save({"model": ema.state_dict(), "args": vars(args), "step": stop, "elapsed_s": wall}, os.path.join(args.out, "final.pt"))
            log(f"[done] {stop} steps in {wall/60:.1f} min; best mean gain {best[select]:+.3f} dB at step {best['step']}")
        with open(os.path.join(args.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    rt.close()
    return summary
