"""Training loop for the inpainters: random photo crops (``--photos`` collections) and random masks.

``--arch fill-refine`` (issue 15, default): :class:`~trainer.inpaint.model.FillRefineInpainter` with
user-like masks (:func:`~trainer.inpaint.data.training_mask`: boxes and strokes sized for ~384-px
photos, and 10-50 % free-form masks); loss ``mean |out - y|`` over the hole pixels (the push-pull fill is
not learned), plus ``lambda_o`` times AN's orthogonality loss.

``--arch two-stage`` (issue 3, inpaint-an 0.x): random 10-50 % masks; loss ``L1(coarse, y) + L1(out, y)``
over all pixels (the composited ``out`` differs from ``y`` only in the holes), plus ``lambda_o * ||W W^T - I||_F^2`` on each AN's entity filters (eq. 1; 0 for the IN
variant). With ``--adv-weight`` > 0 (the issue's lambda_adv = 1e-3, paper section 5.1) a PatchGAN
discriminator on ``cat(mask, image)`` (real photo vs composited output; :func:`~trainer.loop.lsgan_step`,
as in ``trainer.colorize.train``) adds ``adv_weight * mean((D(out) - 1)^2)`` to the generator loss.
Adam 1e-4 (betas 0.5, 0.999), pix2pix schedule, EMA weights, validation L1 in the holes of fixed
held-out crops and masks, ``best.pt`` = best EMA weights, checkpoints and ``--resume`` as in
``trainer.colorize.train``. Progress lines: step, losses, validation, images/s, ETA.

``--init CKPT`` fine-tunes: the weights (and EMA weights) start from another run's ``checkpoint.pt``
(e.g. 64-px crops, then ``--crop 128`` so the holes are larger in pixels), with a fresh optimizer,
step counter and schedule; the architecture (``width``, ``norm``, ``entities``) must match, else
ValueError. ``--resume`` of the fine-tuning run itself takes precedence over ``--init``.

``--scales`` sets the short sides of the crop pyramid (training and validation crops alike). The
service inpaints a photo shrunk to ``working_max_side`` (160 px), so a whole scene spans ~100-160 px
there; ``--scales 128,144,160`` with ``--crop 128`` trains at that scene scale, where the default
pyramid (160-512) mostly shows close-ups.
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
from .data import random_mask, training_mask
from ..loop import ema_update, lr_at, lsgan_step, psnr, stop_step
from .model import FillRefineInpainter, Inpainter
from ..patchgan import PatchGAN
from ..checkpoint import cast_floats
from .adversarial import SNPatchGAN, detail_ratio, hinge_step, load_stamps, stamp_masks
from ..normalization import orthogonality_loss


def build_model(a: Namespace | dict) -> Inpainter | FillRefineInpainter:
    """Inpainter from saved hyper-parameters (``arch``, ``width``, ``norm``, ``entities``; runs saved before
    ``--arch`` existed are two-stage)."""
    a = a if isinstance(a, dict) else vars(a)
    if a.get("arch", "two-stage") == "fill-refine":
        return FillRefineInpainter(width=a["width"], norm=a["norm"], n=a["entities"], chroma_lowpass=a.get("chroma_lowpass", 0) or 0)
    return Inpainter(width=a["width"], norm=a["norm"], n=a["entities"])


def parse_scales(text: str | None) -> tuple[int, ...]:
    """``--scales`` "128,144,160" -> (128, 144, 160): short sides in px of the crop pyramid
    (:class:`~trainer.data.photos.PhotoCrops`); None or "" -> :data:`~trainer.data.photos.SCALES`.

    Raises:
        ValueError: a side that is not a positive integer.
    """
    if not text:
        return photos.SCALES
    sides = tuple(int(v) for v in str(text).split(","))
    if any(v <= 0 for v in sides):
        raise ValueError(f"--scales: short sides must be positive, got {text!r}")
    return sides


def masks_for(n: int, size: int, rng: np.random.Generator, user: bool = False, stamps: list | None = None,
              object_share: float = 0.0) -> torch.Tensor:
    """n masks as float32 n x 1 x size x size (1 = hole): :func:`training_mask` (``user``) or 10-50 %
    :func:`random_mask`; with ``stamps`` (:func:`~trainer.inpaint.adversarial.load_stamps`) a share
    ``object_share`` of them are object silhouettes (:func:`~trainer.inpaint.adversarial.stamp_masks`)."""
    def draw():
        if stamps and object_share > 0 and rng.random() < object_share:
            return stamp_masks(size, rng, stamps)
        return training_mask(size, rng) if user else random_mask(size, size, rng)
    return torch.from_numpy(np.stack([draw() for _ in range(n)])).float()[:, None]


def an_state(model) -> dict:
    """AN's learned mixing weights, for the log: mean rho and mean t over the model's AN layers (empty for IN)."""
    layers = model.an_layers()
    if not layers:
        return {}
    return {"rho": round(float(sum(a.rho.mean() for a in layers) / len(layers)), 4),
            "t": round(float(sum(a.t.mean() for a in layers) / len(layers)), 4)}


def sample_with_mask(k: int, crop: torch.Tensor, seed: int, size: int, user: bool, stamps: list,
                     object_share: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``k`` of an indexed run (:mod:`trainer.data.stream`): (its uint8 3 x c x c crop, its hole mask
    float32 1 x c x c from :func:`masks_for` with the generator ``(seed + 1, k)``)."""
    return crop, masks_for(1, size, stream.sample_rng(seed + 1, k, 1), user, stamps, object_share)[0]


def train(args: Namespace) -> dict:
    """Run (or resume) one inpainter training job; returns the summary (also ``<out>/summary.json``).
    Under torchrun each process computes its share of the global ``--batch`` (:mod:`trainer.distributed`; the
    critic's gradients averaged by :meth:`~trainer.distributed.Runtime.sync_grads`); rank 0 validates, logs and
    writes the checkpoints. Raises ValueError for a batch the world size does not divide."""
    fill_refine = getattr(args, "arch", "two-stage") == "fill-refine"
    collections = photos.parse_collections(getattr(args, "photos", None))
    rt, share = distributed.start(args, indexed=photos.is_streamed(collections))
    print = rt.print  # noqa: A001 - rank 0 logs
    device = rt.device
    train_set, val_set = photos.split(photos.index(collections))
    scales = parse_scales(getattr(args, "scales", None))
    crops = photos.training_source(train_set, collections, args.crop, scales, args.seed)
    mask_rng = np.random.default_rng(args.seed + 1)
    vy = photos.PhotoCrops(val_set, crop=args.crop, scales=scales, seed=12345).batch(args.val_crops).float().div(127.5).sub(1).to(device)
    critic = getattr(args, "critic", "patchgan")
    object_share = getattr(args, "object_masks", 0.0)
    stamps = load_stamps() if object_share > 0 else []
    if object_share > 0 and not stamps:
        print("[data] no tuxpaint stamps found (apt-get install tuxpaint-stamps-default): object masks off", flush=True)
    vm = masks_for(args.val_crops, args.crop, np.random.default_rng(54321), fill_refine, stamps, object_share).to(device)
    print(f"[data] {len(train_set)} training / {len(val_set)} validation photos from {','.join(collections)}; "
          f"{args.val_crops} validation crops; pyramid short sides {scales} px; arch {args.arch if fill_refine else 'two-stage'}",
          flush=True)
    print(f"[run] {rt.describe(args.batch)}, lr {args.lr}", flush=True)

    model = build_model(args).to(device)
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.5, 0.999))
    adv_weight = getattr(args, "adv_weight", 0.0)
    disc = opt_d = None
    fm_weight = getattr(args, "fm_weight", 0.0)
    d_lr_mult = getattr(args, "d_lr_mult", 1.0)
    if adv_weight > 0 and critic == "sn-luma":
        disc = SNPatchGAN(in_channels=2, ndf=getattr(args, "ndf", 24)).to(device)
        opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr * d_lr_mult, betas=(0.5, 0.999))
    elif adv_weight > 0:
        disc = PatchGAN(in_channels=4).to(device)
        opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    best = {"val_l1_hole": float("inf"), "step": 0}
    start, elapsed_before = 0, 0.0
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(ck["model"]); ema.load_state_dict(ck["ema"]); opt.load_state_dict(ck["opt"])
        if disc is not None and ck.get("disc"):
            disc.load_state_dict(cast_floats(ck["disc"], torch.float32)); opt_d.load_state_dict(cast_floats(ck["opt_d"], torch.float32))
        if not rt.indexed:  # one process, its own sampler: continue the same data order
            crops.rng.bit_generator.state = ck["data_rng"]; mask_rng.bit_generator.state = ck["mask_rng"]
            torch.set_rng_state(ck["torch_rng"])
        start, elapsed_before, best = ck["step"], ck["elapsed_s"], ck["best"]
        print(f"[resume] from step {start} (written by {ck['args'].get('world_size', 1)} process(es))", flush=True)
    elif getattr(args, "init", None):
        ck = torch.load(args.init, map_location=device)
        keys = ("width", "norm", "entities", "arch")
        mismatch = {k: (ck["args"].get(k, "two-stage"), vars(args).get(k, "two-stage")) for k in keys
                    if ck["args"].get(k, "two-stage") != vars(args).get(k, "two-stage")}
        if mismatch:
            raise ValueError(f"--init {args.init}: architecture differs (checkpoint, this run): {mismatch}")
        model.load_state_dict(ck["model"]); ema.load_state_dict(ck.get("ema", ck["model"]))
        print(f"[init] weights from {args.init} (its step {ck['step']}, crop {ck['args']['crop']})", flush=True)

    with torch.no_grad():
        vfill = model(vy, vm)[0] * vm + vy * (1 - vm)
    print(f"[data] validation baseline: {'push-pull fill' if fill_refine else 'coarse stage at init'} "
          f"val_l1_hole {(vfill - vy).abs()[vm.expand_as(vy) > 0].mean().item():.4f} val_psnr {psnr(vfill, vy):.2f}dB", flush=True)
    t0 = time.time()
    t_last, n_last = t0, 0
    final = None
    stop = stop_step(args)
    batches = (stream.IndexedBatches(crops, functools.partial(sample_with_mask, seed=args.seed, size=args.crop, user=fill_refine,
                                                              stamps=stamps, object_share=object_share),
                                     args.batch, share, start, stop, args.workers) if rt.indexed else None)
    net = rt.wrap(model)
    for step in range(start, stop):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr)
        for g in (opt_d.param_groups if opt_d else []):
            g["lr"] = lr_at(step, args.steps, args.lr) * (d_lr_mult if critic == "sn-luma" else 1.0)
        if batches is not None:
            u8, m = batches.next()
            y, m = u8.float().div(127.5).sub(1).to(device), m.to(device)
        else:
            y = crops.batch(args.batch).float().div(127.5).sub(1).to(device)
            m = masks_for(args.batch, args.crop, mask_rng, fill_refine, stamps, object_share).to(device)
        with rt.autocast():
            coarse, out = net(y, m)
        coarse, out = coarse.float(), out.float()
        if fill_refine:  # mean |out - y| over the hole pixels of the global batch (the fill is not learned)
            loss_rec = ((out - y).abs() * m).sum() / rt.per_process(3 * m.sum()).clamp(min=1)
        else:
            loss_rec = F.l1_loss(coarse, y) + F.l1_loss(out, y)
        loss_o = sum((orthogonality_loss(an, args.lambda_o) for an in model.an_layers()), torch.zeros((), device=device))
        loss_adv = loss_fm = torch.zeros((), device=device)
        if disc is not None and critic == "sn-luma":
            _, loss_g, loss_fm = hinge_step(disc, opt_d, y, out, m, fm_weight, sync=rt.sync_grads)
            loss_adv = adv_weight * loss_g
        elif disc is not None:
            _, loss_g = lsgan_step(disc, opt_d, torch.cat([m, y], 1), torch.cat([m, out], 1), sync=rt.sync_grads)
            loss_adv = adv_weight * loss_g
        rt.step(loss_rec + loss_o + loss_adv + loss_fm, opt)
        ema_update(ema, model, step, args.ema)
        n_last += args.batch
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            rec_all = rt.mean(loss_rec.item())
        if rt.main and (done % args.log_every == 0 or done == args.steps):
            with torch.no_grad():
                _, vo = ema(vy, vm)
            hole = vm.expand_as(vy) > 0
            val_l1 = (vo - vy).abs()[hole].mean().item()
            now = time.time()
            ips = n_last / (now - t_last)
            elapsed = elapsed_before + now - t0
            if val_l1 < best["val_l1_hole"]:
                best = {"val_l1_hole": round(val_l1, 5), "val_psnr": round(psnr(vo, vy), 3), "step": done}
                torch.save({"model": ema.state_dict(), "args": vars(args), "step": done, "best": best, "elapsed_s": elapsed},
                           os.path.join(args.out, "best.pt"))
            final = {"step": done, "rec": round(rec_all, 5), "ortho": round(float(loss_o), 5), "adv": round(float(loss_adv), 6),
                     "fm": round(float(loss_fm), 6), "val_l1_hole": round(val_l1, 5), "val_psnr": round(psnr(vo, vy), 3),
                     "val_detail": round(detail_ratio(vo, vy, vm), 4), **an_state(model)}
            with open(os.path.join(args.out, "curve.json"), "a") as f:
                f.write(json.dumps(final) + "\n")
            print(f"[train] step {done}/{args.steps} rec {final['rec']:.4f} ortho {final['ortho']:.4f} adv {final['adv']:.5f} "
                  f"fm {final['fm']:.4f} val_l1_hole {val_l1:.4f} val_psnr {final['val_psnr']:.2f}dB detail {final['val_detail']:.3f} "
                  f"{' '.join(f'{k} {final[k]}' for k in ('rho', 't') if k in final)} (best {best['val_l1_hole']:.4f} @ {best['step']}) "
                  f"{ips:.1f} img/s elapsed {elapsed / 60:.1f}min ETA {(args.steps - done) * args.batch / max(ips, 1e-9) / 60:.1f}min",
                  flush=True)
            t_last, n_last = now, 0
        if rt.main and (done % args.ckpt_every == 0 or done in (args.steps, stop)):
            torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                        "data_rng": getattr(crops, "rng", mask_rng).bit_generator.state, "mask_rng": mask_rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "step": done,
                        "disc": cast_floats(disc.state_dict(), torch.bfloat16) if disc else None,
                        "opt_d": cast_floats(opt_d.state_dict(), torch.bfloat16) if opt_d else None, "best": best,
                        "elapsed_s": elapsed_before + time.time() - t0, "args": vars(args)}, ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)
    scale_out = rt.record(args.batch, args.lr, batches)
    rt.close()
    if stop < args.steps:
        print(f"[stop] --stop-at {stop}: checkpoint written, {args.steps - stop} steps of the schedule left "
              f"(resume with --resume)", flush=True)
        return {"steps": stop, "stopped_early": True, "best": best}
    wall = elapsed_before + time.time() - t0
    summary = {"steps": args.steps, "wall_time_s": round(wall, 1), "final": final, "best": best, **scale_out, "args": vars(args)}
    if not rt.main:
        return summary
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"[done] {args.steps} steps in {wall / 60:.1f} min; best val_l1_hole {best['val_l1_hole']} at step {best['step']}", flush=True)
    return summary
