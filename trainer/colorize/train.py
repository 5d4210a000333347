"""Training loop for the colorization translator (paired gray -> colour).

Pairs come from real photos (``--photos``: collections of :mod:`trainer.data.photos`): target = RGB crop
in [-1, 1]; input = its BT.601 luma ``2Y - 1`` (B x 1 x H x W, uint8-rounded). ``--luma-jitter g``
applies a per-crop gamma ``exp(U(-g, g))`` to the RGB crop first (lightness changes, hue kept).

Losses (``--loss``):

* ``classify`` (Zhang, Isola & Efros 2016): the network's H/2 logits over the Q in-gamut ab bins against
  the soft-encoded ab of the target (ab average-pooled 2 x 2 to H/2), class-rebalanced cross-entropy
  (eqs. 2-4; :mod:`trainer.colorize.quantize`). The empirical ab prior is counted once at the start on
  ``--prior-crops`` training crops and kept in the checkpoint.
* ``l1``: ``L1(G(x), y)`` on RGB (pix2pix's L1 term), the ablation and the 1.0.0 model.

With ``--gan-weight > 0`` a PatchGAN adversarial term (LSGAN form, as in pix2pix's code) on the decoded
RGB is added with that weight. Adam (lr 2e-4, betas 0.5/0.999), constant for the first half of the
steps then linear decay to 0 (pix2pix schedule).

Weights: an exponential moving average (EMA, Polyak averaging, decay ``--ema``) of the generator
is kept beside the raw weights; validation and export use the EMA weights.

Validation and early stopping: every ``--log-every`` steps the EMA generator is scored on a fixed set
of ``--val-crops`` crops of ``--val-crop`` px from the held-out validation photos (never trained on;
split by image id): L1, PSNR, the colourfulness ratio to the true crops (Hasler & Suesstrunk M3) and,
for ``classify``, the rebalanced cross-entropy. ``<out>/best.pt`` keeps the EMA weights with the lowest
validation loss so far (val CE for ``classify``, val L1 for ``l1``); ``<out>/curve.json`` keeps every
validation record. The test photos play no part.

Progress lines: step, losses, validation L1/PSNR, images/s and ETA. Checkpoints
(``<out>/checkpoint.pt``: model, EMA, optimizers, step, RNG states, best so far) every
``--ckpt-every`` steps; ``--resume`` continues from one in the same data order.
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

from ..color import rgb_to_lab, rgb_to_luma
from ..loop import ema_update, lr_at as _lr_at, lsgan_step, psnr, stop_step
from .. import distributed
from ..data import photos, stream
from ..patchgan import PatchGAN
from . import quantize
from .model import Translator


def build_model(args: Namespace | dict) -> Translator:
    """Translator from saved hyper-parameters (``ngf``, ``n_blocks``, ``pono_ms``, ``loss``: the
    classify head for ``loss == "classify"``; runs saved before ``--loss`` existed are L1)."""
    a = args if isinstance(args, dict) else vars(args)
    head = "classify" if a.get("loss", "l1") == "classify" else "l1"
    return Translator(in_channels=1, ngf=a["ngf"], n_blocks=a["n_blocks"], pono_ms=a["pono_ms"], task="colorize", head=head)


def to_pair(rgb_u8: torch.Tensor, device: torch.device, gamma_jitter: float = 0.0,
            gen: torch.Generator | None = None, gamma: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 B x 3 x H x W -> (luma input B x 1 x H x W, RGB target B x 3 x H x W), both float32 in [-1, 1].

    With ``gamma_jitter`` g > 0 each crop's RGB in [0, 1] is raised to a gamma ``exp(U(-g, g))`` (drawn from
    ``gen``) first: brighter or darker, same hue; ``gamma`` (float32 B, drawn per sample: :func:`sample_gamma`)
    gives the gammas instead. The input luma is quantized to uint8, as a real grayscale photo would be.
    """
    y01 = rgb_u8.to(device).float() / 255.0
    if gamma is not None:
        y01 = y01.clamp(min=0) ** gamma.to(device).view(-1, 1, 1, 1)
    elif gamma_jitter > 0:
        g = torch.exp((torch.rand(y01.shape[0], 1, 1, 1, generator=gen) * 2 - 1) * gamma_jitter).to(device)
        y01 = y01.clamp(min=0) ** g
    y = y01 * 2 - 1
    luma_u8 = torch.round((rgb_to_luma(y) + 1.0) * 127.5).clamp(0, 255)
    return luma_u8 / 127.5 - 1.0, y


def sample_gamma(k: int, crop: torch.Tensor, seed: int, jitter: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``k`` of an indexed run (:mod:`trainer.data.stream`): (its uint8 3 x c x c crop, its gamma
    ``exp(U(-jitter, jitter))`` as a float32 scalar tensor, drawn from ``(seed + 1, k)``; 1 without jitter)."""
    g = np.exp((stream.sample_rng(seed + 1, k, 1).random() * 2 - 1) * jitter) if jitter > 0 else 1.0
    return crop, torch.tensor(g, dtype=torch.float32)


def ab_half(y: torch.Tensor) -> torch.Tensor:
    """Target ab at H/2: RGB B x 3 x H x W in [-1, 1] -> CIE a*b* B x 2 x H/2 x W/2 (2 x 2 mean)."""
    return F.avg_pool2d(rgb_to_lab((y + 1) * 0.5)[:, 1:], 2)


def ab_prior(crops: "photos.PhotoCrops", n: int, batch: int, bins: torch.Tensor) -> np.ndarray:
    """p~ of eq. 4: nearest-bin counts of the H/2 ab of ``n`` training crops, smoothed (sigma 5); float64 Q."""
    counts = torch.zeros(len(bins), dtype=torch.float64)
    for i in range(0, n, batch):
        _, y = to_pair(crops.batch(min(batch, n - i)), torch.device("cpu"))
        q = quantize.nearest_bin(ab_half(y), bins)
        counts += torch.bincount(q.flatten(), minlength=len(bins)).double()
    return quantize.empirical_prior(counts.numpy(), bins.numpy())


def colourfulness_ratio(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Mean over crops of M3(pred) / M3(true) (Hasler & Suesstrunk), for RGB B x 3 x H x W in [-1, 1]."""
    to_u8 = lambda t: ((t.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    p, t = to_u8(pred), to_u8(true)
    return float(np.mean([quantize.colourfulness(a) / max(quantize.colourfulness(b), 1e-6) for a, b in zip(p, t)]))


def train(args: Namespace) -> dict:
    """Run (or resume) one training job; returns a summary dict (also written to ``<out>/summary.json``).
    Under torchrun each process computes its share of the global ``--batch`` (:mod:`trainer.distributed`; the
    PatchGAN's gradients averaged by :meth:`~trainer.distributed.Runtime.sync_grads`); rank 0 validates, logs
    and writes the checkpoints.

    Raises FileNotFoundError when the photos are not installed, ValueError for a batch the world size does not divide.
    """
    collections = photos.parse_collections(getattr(args, "photos", None))
    rt, share = distributed.start(args, indexed=photos.is_streamed(collections))
    print = rt.print  # noqa: A001 - rank 0 logs
    np.random.seed(args.seed)
    device = rt.device

    all_photos = photos.index(collections)
    train_set, val_set = photos.split(all_photos)
    print(f"[data] {len(train_set)} training / {len(val_set)} validation photos from {','.join(collections)} "
          f"(split by image id{'; streamed from disk' if photos.is_streamed(collections) else ''}), crops {args.crop}px; loading ...", flush=True)
    print(f"[run] {rt.describe(args.batch)}, lr {args.lr}", flush=True)
    crops = photos.training_source(train_set, collections, args.crop, photos.SCALES, args.seed)
    val_batch = photos.PhotoCrops(val_set, crop=args.val_crop, seed=12345).batch(args.val_crops)
    vx, vy = to_pair(val_batch, device)
    gray_l1 = F.l1_loss(vx.expand_as(vy), vy).item()
    print(f"[data] validation: {args.val_crops} crops of {args.val_crop}px; gray-copy val_l1 {gray_l1:.4f} "
          f"val_psnr {psnr(vx.expand_as(vy), vy):.2f}dB", flush=True)
    classify = getattr(args, "loss", "l1") == "classify"
    jitter_gen = torch.Generator().manual_seed(args.seed + 1)

    model = build_model(args).to(device)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    best = {"val_l1": float("inf"), "val_loss": float("inf"), "step": 0}
    weights = prior = None
    if classify:
        bins = model.ab_bins.cpu()
        vz, vq = quantize.soft_encode(ab_half(vy).cpu(), bins).to(device), quantize.nearest_bin(ab_half(vy).cpu(), bins).to(device)
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
        if not rt.indexed:  # one process, its own sampler: continue the same data order
            crops.rng.bit_generator.state = ck["data_rng"]
            torch.set_rng_state(ck["torch_rng"])
            if ck.get("jitter_rng") is not None:
                jitter_gen.set_state(ck["jitter_rng"])
        prior = ck.get("ab_prior")
        best.setdefault("val_loss", best.get("val_l1", float("inf")))
        start, elapsed_before = ck["step"], ck["elapsed_s"]
        print(f"[resume] from step {start} (written by {ck['args'].get('world_size', 1)} process(es))", flush=True)
    elif getattr(args, "init", None):
        ck = torch.load(args.init, map_location=device)
        for k in ("ngf", "n_blocks", "pono_ms", "loss"):
            if ck["args"].get(k) != vars(args).get(k):
                raise ValueError(f"--init {args.init}: {k} differs (checkpoint {ck['args'].get(k)!r}, this run {vars(args).get(k)!r})")
        model.load_state_dict(ck.get("ema", ck["model"]))
        ema.load_state_dict(ck.get("ema", ck["model"]))
        prior = ck.get("ab_prior")
        print(f"[init] weights from {args.init} (its step {ck['step']}); fresh optimizer and schedule", flush=True)
    if classify:
        if prior is None and rt.indexed:  # the same fixed crops in every process
            prior = ab_prior(stream.Sequential(photos.training_source(train_set, collections, args.crop, photos.SCALES,
                                                                      args.seed + 7)), args.prior_crops, 64, bins)
        elif prior is None:
            prior_crops = photos.PhotoCrops([], crop=args.crop, seed=args.seed + 7)
            prior_crops.pyramid = crops.pyramid
            prior = ab_prior(prior_crops, args.prior_crops, 64, bins)
        weights = torch.from_numpy(quantize.rebalance_weights(prior, getattr(args, "rebalance_lambda", quantize.LAMBDA))).to(device)
        print(f"[prior] Q = {len(bins)} ab bins; prior from {args.prior_crops} crops: max p~ {prior.max():.4f}, "
              f"weights {weights.min().item():.2f}..{weights.max().item():.2f}", flush=True)

    def save(step: int, elapsed: float) -> None:
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "best": best, "opt_g": opt_g.state_dict(),
                    "disc": disc.state_dict() if disc else None, "opt_d": opt_d.state_dict() if opt_d else None,
                    "data_rng": getattr(crops, "rng", np.random.default_rng(0)).bit_generator.state, "torch_rng": torch.get_rng_state(),
                    "jitter_rng": jitter_gen.get_state(), "ab_prior": prior,
                    "step": step, "elapsed_s": elapsed, "args": vars(args)}, tmp)
        os.replace(tmp, ckpt_path)

    t0 = time.time()
    t_last, n_last = t0, 0
    history = []
    model.train()
    stop = stop_step(args)
    batches = (stream.IndexedBatches(crops, functools.partial(sample_gamma, seed=args.seed, jitter=args.luma_jitter),
                                     args.batch, share, start, stop, args.workers) if rt.indexed else None)
    net_logits = rt.wrap(model, "logits") if classify else None
    net = rt.wrap(model) if not classify else None
    for step in range(start, stop):
        for g in opt_g.param_groups:
            g["lr"] = lr_at(step)
        if batches is not None:
            u8, gamma = batches.next()
            x, y = to_pair(u8, device, gamma=gamma)
        else:
            x, y = to_pair(crops.batch(args.batch), device, args.luma_jitter, jitter_gen)
        if classify:
            with rt.autocast():
                logits = net_logits(x).float()
            tgt = ab_half(y).cpu()
            z, q = quantize.soft_encode(tgt, bins).to(device), quantize.nearest_bin(tgt, bins).to(device)
            loss_main = quantize.rebalanced_ce(logits, z, weights, q)
            fake = model.decode(x, logits) if disc is not None else None
            loss_l1 = loss_main.detach() if fake is None else F.l1_loss(fake.detach(), y)
        else:
            with rt.autocast():
                fake = net(x).float()
            loss_main = loss_l1 = F.l1_loss(fake, y)
        loss_g = loss_main
        loss_d = torch.zeros(())
        if disc is not None:
            for g in opt_d.param_groups:
                g["lr"] = lr_at(step)
            loss_d, loss_adv = lsgan_step(disc, opt_d, torch.cat([x, y], 1), torch.cat([x, fake], 1),
                                          sync=rt.sync_grads)
            loss_g = loss_main + args.gan_weight * loss_adv
        rt.step(loss_g, opt_g)
        ema_update(ema, model, step, args.ema)
        n_last += args.batch

        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            loss_all = rt.mean(loss_main.item())
        if rt.main and (done % args.log_every == 0 or done == args.steps):
            with torch.no_grad():
                if classify:
                    vlog = ema.logits(vx)
                    val_ce = quantize.rebalanced_ce(vlog, vz, weights, vq).item()
                    vf = ema.decode(vx, vlog)
                else:
                    vf = ema(vx)
            now = time.time()
            ips = n_last / (now - t_last)
            elapsed = elapsed_before + now - t0
            eta = (args.steps - done) * args.batch / max(ips, 1e-9)
            rec = {"step": done, "loss": round(loss_all, 5), "l1": round(float(loss_l1), 5), "d": round(float(loss_d), 4),
                   "val_l1": round(F.l1_loss(vf, vy).item(), 5), "val_psnr": round(psnr(vf, vy), 3),
                   "val_colourfulness": round(colourfulness_ratio(vf.cpu(), vy.cpu()), 4)}
            if classify:
                rec["val_ce"] = round(val_ce, 5)
            rec["val_loss"] = rec["val_ce"] if classify else rec["val_l1"]
            history.append(rec)
            if rec["val_loss"] < best["val_loss"]:
                best = {"val_loss": rec["val_loss"], "val_l1": rec["val_l1"], "val_psnr": rec["val_psnr"],
                        "val_colourfulness": rec["val_colourfulness"], "step": done}
                torch.save({"model": ema.state_dict(), "args": vars(args), "step": done, "best": best,
                            "elapsed_s": elapsed}, os.path.join(args.out, "best.pt"))
            with open(os.path.join(args.out, "curve.json"), "a") as f:
                f.write(json.dumps(rec) + "\n")
            extra = f"val_ce {rec['val_ce']:.4f} " if classify else ""
            print(f"[train] step {done}/{args.steps} loss {rec['loss']:.4f} d {rec['d']:.3f} {extra}"
                  f"val_l1 {rec['val_l1']:.4f} val_psnr {rec['val_psnr']:.2f}dB colour {rec['val_colourfulness']:.2f}x "
                  f"(best {best['val_loss']:.4f} @ {best['step']}) {ips:.1f} img/s lr {lr_at(step):.2e} elapsed {elapsed/60:.1f}min ETA {eta/60:.1f}min", flush=True)
            t_last, n_last = now, 0
        if rt.main and (done % args.ckpt_every == 0 or done in (args.steps, stop)):
            save(done, elapsed_before + time.time() - t0)

    scale_out = rt.record(args.batch, args.lr, batches)
    rt.close()
    if stop < args.steps:
        print(f"[stop] --stop-at {stop}: checkpoint written, {args.steps - stop} steps of the schedule left "
              f"(resume with --resume)", flush=True)
        return {"steps": stop, "stopped_early": True, "best": best}
    wall = elapsed_before + time.time() - t0
    if not rt.main:
        return {"steps": args.steps, "rank": rt.rank}
    torch.save({"model": ema.state_dict(), "args": vars(args), "step": args.steps, "elapsed_s": wall},
               os.path.join(args.out, "final.pt"))
    summary = {"steps": args.steps, "wall_time_s": round(wall, 1), "final": history[-1] if history else None,
               "best": best, "gray_copy_val_l1": round(gray_l1, 5),
               "train_photos": ([p.image_id for p in train_set] if len(train_set) <= 10000 else len(train_set)),
               "validation_photos": [p.image_id for p in val_set], **scale_out, "args": vars(args)}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"[done] {args.steps} steps in {wall/60:.1f} min -> {args.out}/final.pt; best val loss {best['val_loss']:.4f} "
          f"at step {best['step']} -> {args.out}/best.pt", flush=True)
    return summary
