"""Training loop for the colorization translator (pix2pix-style, paired gray -> colour).

Pairs come from real photos: target = RGB crop in [-1, 1]; input = its BT.601 luma ``2Y - 1``
(B x 1 x H x W). Loss: ``L1(G(x), y)`` (pix2pix's L1 term); with ``--gan-weight > 0`` a PatchGAN
adversarial term (LSGAN form, as in pix2pix's code) is added to the generator loss with that
weight relative to L1 weight 1. Adam (lr 2e-4, betas 0.5/0.999), constant for the first half of
the steps then linear decay to 0 (pix2pix schedule).

Weights: an exponential moving average (EMA, Polyak averaging, decay ``--ema``) of the generator
is kept beside the raw weights; validation and export use the EMA weights.

Validation and early stopping: every ``--log-every`` steps the EMA generator is scored (L1 and PSNR)
on a fixed set of ``--val-crops`` crops of ``--val-crop`` px from the held-out validation photos
(never trained on; split by image id). ``<out>/best.pt`` keeps the EMA weights with the lowest
validation L1 so far: with a few dozen training photos the network starts to memorize their colours after a
few hundred steps, and this held-out selection stops it there. The test photos play no part.

Progress lines: step, losses, validation L1/PSNR, images/s and ETA. Checkpoints
(``<out>/checkpoint.pt``: model, EMA, optimizers, step, RNG states, best so far) every
``--ckpt-every`` steps; ``--resume`` continues from one in the same data order.
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

from ..color import rgb_to_luma
from ..loop import ema_update, lr_at as _lr_at, lsgan_step, psnr
from ..data import photos
from ..patchgan import PatchGAN
from .model import Translator


def build_model(args: Namespace | dict) -> Translator:
    """Translator from saved hyper-parameters (``ngf``, ``n_blocks``, ``pono_ms``)."""
    a = args if isinstance(args, dict) else vars(args)
    return Translator(in_channels=1, ngf=a["ngf"], n_blocks=a["n_blocks"], pono_ms=a["pono_ms"], task="colorize")


def to_pair(rgb_u8: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 B x 3 x H x W -> (luma input B x 1 x H x W, RGB target B x 3 x H x W), both float32 in [-1, 1].

    The input luma is quantized to uint8 first, as a real grayscale photo would be.
    """
    y = rgb_u8.to(device).float() / 127.5 - 1.0
    luma_u8 = torch.round((rgb_to_luma(y) + 1.0) * 127.5).clamp(0, 255)
    return luma_u8 / 127.5 - 1.0, y


def train(args: Namespace) -> dict:
    """Run (or resume) one training job; returns a summary dict (also written to ``<out>/summary.json``).

    Raises FileNotFoundError when the photos are not installed.
    """
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)

    all_photos = photos.index()
    train_set, val_set = photos.split(all_photos)
    print(f"[data] {len(train_set)} training / {len(val_set)} validation photos "
          f"(split by image id), crops {args.crop}px", flush=True)
    crops = photos.PhotoCrops(train_set, crop=args.crop, seed=args.seed)
    val_batch = photos.PhotoCrops(val_set, crop=args.val_crop, seed=12345).batch(args.val_crops)
    vx, vy = to_pair(val_batch, device)
    gray_l1 = F.l1_loss(vx.expand_as(vy), vy).item()
    print(f"[data] validation: {args.val_crops} crops of {args.val_crop}px; gray-copy val_l1 {gray_l1:.4f} "
          f"val_psnr {psnr(vx.expand_as(vy), vy):.2f}dB", flush=True)

    model = build_model(args).to(device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    best = {"val_l1": float("inf"), "step": 0}
    opt_g = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.5, 0.999))
    disc = opt_d = None
    if args.gan_weight > 0:
        disc = PatchGAN(in_channels=4).to(device)
        opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))

    def lr_at(step: int) -> float:
        return _lr_at(step, args.steps, args.lr)

    start, elapsed_before = 0, 0.0
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        best = ck["best"]
        opt_g.load_state_dict(ck["opt_g"])
        if disc is not None and ck.get("disc"):
            disc.load_state_dict(ck["disc"])
            opt_d.load_state_dict(ck["opt_d"])
        crops.rng.bit_generator.state = ck["data_rng"]
        torch.set_rng_state(ck["torch_rng"])
        start, elapsed_before = ck["step"], ck["elapsed_s"]
        print(f"[resume] from step {start}", flush=True)

    def save(step: int, elapsed: float) -> None:
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "best": best, "opt_g": opt_g.state_dict(),
                    "disc": disc.state_dict() if disc else None, "opt_d": opt_d.state_dict() if opt_d else None,
                    "data_rng": crops.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "step": step, "elapsed_s": elapsed, "args": vars(args)}, tmp)
        os.replace(tmp, ckpt_path)

    t0 = time.time()
    t_last, n_last = t0, 0
    history = []
    model.train()
    for step in range(start, args.steps):
        for g in opt_g.param_groups:
            g["lr"] = lr_at(step)
        x, y = to_pair(crops.batch(args.batch), device)
        fake = model(x)
        loss_l1 = F.l1_loss(fake, y)
        loss_g = loss_l1
        loss_d = torch.zeros(())
        if disc is not None:
            for g in opt_d.param_groups:
                g["lr"] = lr_at(step)
            loss_d, loss_adv = lsgan_step(disc, opt_d, torch.cat([x, y], 1), torch.cat([x, fake], 1))
            loss_g = loss_l1 + args.gan_weight * loss_adv
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        ema_update(ema, model, step, args.ema)
        n_last += args.batch

        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            with torch.no_grad():
                vf = ema(vx)
            now = time.time()
            ips = n_last / (now - t_last)
            elapsed = elapsed_before + now - t0
            eta = (args.steps - done) * args.batch / max(ips, 1e-9)
            rec = {"step": done, "l1": round(loss_l1.item(), 5), "d": round(float(loss_d), 4),
                   "val_l1": round(F.l1_loss(vf, vy).item(), 5), "val_psnr": round(psnr(vf, vy), 3)}
            history.append(rec)
            if rec["val_l1"] < best["val_l1"]:
                best = {"val_l1": rec["val_l1"], "val_psnr": rec["val_psnr"], "step": done}
                torch.save({"model": ema.state_dict(), "args": vars(args), "step": done, "best": best,
                            "elapsed_s": elapsed}, os.path.join(args.out, "best.pt"))
            print(f"[train] step {done}/{args.steps} l1 {rec['l1']:.4f} d {rec['d']:.3f} "
                  f"val_l1 {rec['val_l1']:.4f} val_psnr {rec['val_psnr']:.2f}dB "
                  f"(best {best['val_l1']:.4f} @ {best['step']}) {ips:.1f} img/s lr {lr_at(step):.2e} elapsed {elapsed/60:.1f}min ETA {eta/60:.1f}min", flush=True)
            t_last, n_last = now, 0
        if done % args.ckpt_every == 0 or done == args.steps:
            save(done, elapsed_before + time.time() - t0)

    wall = elapsed_before + time.time() - t0
    torch.save({"model": ema.state_dict(), "args": vars(args), "step": args.steps, "elapsed_s": wall},
               os.path.join(args.out, "final.pt"))
    summary = {"steps": args.steps, "wall_time_s": round(wall, 1), "final": history[-1] if history else None,
               "best": best, "gray_copy_val_l1": round(gray_l1, 5),
               "train_photos": [p.image_id for p in train_set], "validation_photos": [p.image_id for p in val_set],
               "args": vars(args)}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"[done] {args.steps} steps in {wall/60:.1f} min -> {args.out}/final.pt; best val_l1 {best['val_l1']:.4f} "
          f"at step {best['step']} -> {args.out}/best.pt", flush=True)
    return summary
