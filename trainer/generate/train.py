"""Training loop of the class-conditional Fashion-MNIST GAN (issue 4 section 3).

Hinge loss (Wang et al. 2020, eqs. 7-8; Lim and Ye 2017):
``L_D = E[relu(1 - D(x, y))] + E[relu(1 + D(G(z, y), y))]``, ``L_G = -E[D(G(z, y), y)]``, plus
``lambda_o * ||W W^T - I||_F^2`` on every AN's entity filters (eq. 1). Adam with the two-time-scale
rule: G 1e-4, D 4e-4, betas (0, 0.999); with ``lr_decay_from`` = S > 0 both rates decay linearly from
step S to 0 at ``steps`` (:func:`lr_scale`; set S once the curve has flattened at constant rates);
``n_dis`` D steps per G step; the classes of the fake batch are drawn uniformly.

With ``aux_weight`` = a > 0 (issue 16), D carries an auxiliary class head (AC-GAN, Odena et al. 2017) trained
on real images only, and G is pushed towards images that head recognises as the requested class:
``L_D += a * CE(C(x), y)``, ``L_G += a * CE(C(G(z, y)), y)``. The projection term stays. A run may switch
it on when resuming a checkpoint trained without it (the head starts fresh, its Adam state too). EMA weights of G (decay 0.999) are what is evaluated and exported (with
standing BN statistics, ``networks.gan.standing_stats``).

Writes ``<out>/checkpoint.pt`` every ``ckpt_every`` steps (``--resume`` continues from it, RNG state
included), ``<out>/final.pt`` (EMA G + args) and ``<out>/summary.json``; with ``snapshot_every`` > 0 also
``<out>/snapshots/ema_NNNNNN.pt`` (EMA G + args, ~1 MB each) every that many steps, for the FID/accuracy
curve. Progress lines: step, losses,
D(real)/D(fake) means, images/s, ETA.

Usage: ``/usr/bin/python3 -m trainer generate train --out runs/fashion-an --steps 3000 --threads 1``
(``--no-an`` for the ablation).
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

from .. import distributed
from . import data as fashion
from ..loop import ema_update, stop_step
from .model import Discriminator, Generator
from ..normalization import AttentiveNormalization, orthogonality_loss


def build_generator(a: Namespace | dict) -> Generator:
    """Generator from saved hyper-parameters (``ch``, ``an``, ``entities``)."""
    a = a if isinstance(a, dict) else vars(a)
    return Generator(ch=a["ch"], use_an=a["an"], n=a["entities"])


def load_generator(path: str, device: str = "cpu", an_sampling: str = "grid") -> Generator:
    """The EMA generator of ``final.pt``, ``checkpoint.pt`` or a snapshot (training-mode BN statistics as
    saved), its AN layers set to ``inference_sampling=an_sampling`` ("grid": fixed self-sampling positions,
    the default for generators since issue 16; "off": the paper's t = 0; see
    :class:`~trainer.normalization.AttentiveNormalization`). Raises ValueError for another ``an_sampling``."""
    if an_sampling not in AttentiveNormalization.SAMPLINGS:
        raise ValueError(f"an_sampling must be one of {AttentiveNormalization.SAMPLINGS}, got {an_sampling!r}")
    ck = torch.load(path, map_location=device)
    g = build_generator(ck["args"])
    g.load_state_dict(ck["ema"])
    for m in g.an_layers():
        m.inference_sampling = an_sampling
    return g.to(device)


def lr_scale(step: int, steps: int, decay_from: int) -> float:
    """Learning-rate factor at 0-based ``step``: 1 before ``decay_from`` (or always, when it is 0), then
    linear to 0 at ``steps``. Raises ValueError when ``decay_from`` is negative or not below ``steps``."""
    if decay_from < 0 or (decay_from and decay_from >= steps):
        raise ValueError(f"--lr-decay-from must be 0 or in [1, steps={steps}), got {decay_from}")
    if not decay_from or step < decay_from:
        return 1.0
    return max(0.0, (steps - step) / (steps - decay_from))


def indexed_draws(k0: int, lo: int, hi: int, seed: int, n: int, z_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Samples ``k0 + lo`` .. ``k0 + hi - 1`` of an indexed run (:mod:`trainer.data.stream`; multi-process
    training): (int64 indices of real training images, float32 z ``(hi - lo) x z_dim`` ~ N(0, 1), int64 classes
    of the fakes), each sample's from its own generator ``(seed, k)``."""
    from ..data.stream import sample_rng
    idx, z, cls = [], [], []
    for k in range(k0 + lo, k0 + hi):
        rng = sample_rng(seed, k)
        idx.append(int(rng.integers(n)))
        cls.append(int(rng.integers(10)))
        z.append(rng.standard_normal(z_dim, dtype=np.float32))
    return torch.tensor(idx), torch.from_numpy(np.stack(z)), torch.tensor(cls)


def train(args: Namespace) -> dict:
    """Run (or ``--resume``) one GAN training job (see module doc); returns the summary (also
    ``<out>/summary.json``: steps, wall time in s, settings).

    Under torchrun (:mod:`trainer.distributed`) each process computes its share of the global ``--batch``: G's
    step through DDP, D's gradients averaged by :meth:`~trainer.distributed.Runtime.sync_grads` (D runs on real and
    fake batches before one backward). Batch normalization statistics (G's AN / conditional BN, D's) are each
    process's own share's (PyTorch's SyncBatchNorm would drop the AN subclasses' own forward), so W processes
    match one process only approximately; rank 0 logs and writes the checkpoints."""
    rt, (lo, hi) = distributed.start(args)
    print = rt.print  # noqa: A001 - rank 0 logs
    device = rt.device
    x_all, y_all = fashion.load("train")
    x_all = torch.from_numpy(fashion.to_signed(x_all))
    y_all = torch.from_numpy(y_all)
    if device.type != "cpu":  # 188 MB: keep the training set on the accelerator, index it there
        x_all, y_all = x_all.to(device), y_all.to(device)
    g = build_generator(args).to(device)
    aux = getattr(args, "aux_weight", 0.0)
    if aux < 0:
        raise ValueError(f"--aux-weight must be >= 0, got {aux}")
    d = Discriminator(ch=args.ch, use_an=args.an, n=args.entities, aux_classifier=aux > 0).to(device)
    ema = copy.deepcopy(g)
    opt_g = torch.optim.Adam(g.parameters(), lr=args.lr_g, betas=(0.0, 0.999))
    head = list(d.classify.parameters()) if d.classify is not None else []
    opt_d = torch.optim.Adam([p for n_, p in d.named_parameters() if not n_.startswith("classify.")],
                             lr=args.lr_d, betas=(0.0, 0.999))  # the class head, if any, is a second group
    start, elapsed_before = 0, 0.0
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device)
        g.load_state_dict(ck["g"]); ema.load_state_dict(ck["ema"])
        missing, unexpected = d.load_state_dict(ck["d"], strict=False)
        if unexpected or any(not k.startswith("classify.") for k in missing):
            raise ValueError(f"{ckpt_path}: discriminator does not match (missing {missing}, unexpected {unexpected})")
        if missing:
            print(f"[resume] the auxiliary class head starts fresh (--aux-weight {aux})", flush=True)
        had_head = len(ck["opt_d"]["param_groups"]) == 2
        if head and had_head:
            opt_d.add_param_group({"params": head})
        opt_g.load_state_dict(ck["opt_g"]); opt_d.load_state_dict(ck["opt_d"])
        if head and not had_head:
            opt_d.add_param_group({"params": head, "lr": args.lr_d})
        if not rt.indexed:
            torch.set_rng_state(ck["torch_rng"].cpu())
        start, elapsed_before = ck["step"], ck["elapsed_s"]
        print(f"[resume] from step {start} (written by {ck['args'].get('world_size', 1)} process(es))", flush=True)
    n_g = sum(p.numel() for p in g.parameters())
    if head and len(opt_d.param_groups) == 1:
        opt_d.add_param_group({"params": head, "lr": args.lr_d})
    print(f"[data] Fashion-MNIST {len(x_all)} training images; G {n_g} / D {sum(p.numel() for p in d.parameters())} "
          f"parameters; AN {'on' if args.an else 'off'}; auxiliary class loss {aux:g}", flush=True)
    print(f"[run] {rt.describe(args.batch)}, lr G {args.lr_g} D {args.lr_d}", flush=True)
    g_net = rt.wrap(g)

    def draws(step: int, j: int):
        """(real idx, z, classes) of this process's share of round ``j`` of ``step`` (j < n_dis: D, n_dis: G)."""
        if not rt.indexed:
            m = args.batch
            return (torch.randint(n, (m,)) if j < args.n_dis else None, torch.randn(m, g.z_dim, device=device),
                    torch.randint(10, (m,)))
        idx, z, cls = indexed_draws((step * (args.n_dis + 1) + j) * args.batch, lo, hi, args.seed, n, g.z_dim)
        return idx, z.to(device), cls

    def save(step: int, elapsed: float) -> None:
        torch.save({"g": g.state_dict(), "d": d.state_dict(), "ema": ema.state_dict(), "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(), "torch_rng": torch.get_rng_state(), "step": step,
                    "elapsed_s": elapsed, "args": vars(args)}, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    def ortho(net: torch.nn.Module) -> torch.Tensor:
        layers = net.an_layers()
        return sum((orthogonality_loss(m, args.lambda_o) for m in layers), torch.zeros((), device=device))

    t0 = time.time()
    n = len(x_all)
    stop = stop_step(args)
    decay_from = getattr(args, "lr_decay_from", 0)
    lr_scale(0, args.steps, decay_from)  # validate before the first step
    for step in range(start, stop):
        f = lr_scale(step, args.steps, decay_from)
        for group in opt_g.param_groups:
            group["lr"] = args.lr_g * f
        for group in opt_d.param_groups:
            group["lr"] = args.lr_d * f
        for j in range(args.n_dis):
            idx, z, cls = draws(step, j)  # indices drawn on the CPU: same stream on any device
            idx = idx.to(x_all.device)
            real, yr = x_all[idx].to(device), F.one_hot(y_all[idx], 10).float().to(device)
            yf = F.one_hot(cls, 10).float().to(device)
            with torch.no_grad():
                fake = g(z, yf)
            with rt.autocast():
                d_fake = d(fake, yf).float()
                if aux:
                    d_real, logits = d(real, yr, with_logits=True)
                    d_real, logits = d_real.float(), logits.float()
                    ce_real = F.cross_entropy(logits, yr.argmax(1))
                    acc_real = (logits.argmax(1) == yr.argmax(1)).float().mean()
                else:
                    d_real, ce_real = d(real, yr).float(), torch.zeros((), device=device)
            loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean() + aux * ce_real + ortho(d)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            rt.sync_grads(d)
            opt_d.step()
        _, z, cls = draws(step, args.n_dis)
        yf = F.one_hot(cls, 10).float().to(device)
        with rt.autocast():
            if aux:
                score, logits = d(g_net(z, yf), yf, with_logits=True)
                ce_fake = F.cross_entropy(logits.float(), yf.argmax(1))
                loss_g = -score.float().mean() + aux * ce_fake + ortho(g)
            else:
                loss_g = -d(g_net(z, yf), yf).float().mean() + ortho(g)
        rt.step(loss_g, opt_g)
        ema_update(ema, g, step, args.ema)
        for be, bg in zip(ema.buffers(), g.buffers()):
            be.copy_(bg)
        done = step + 1
        if rt.main and (done % args.log_every == 0 or done == args.steps):
            el = time.time() - t0
            rate = (done - start) * args.batch / el
            print(f"[train] step {done}/{args.steps} loss_d {loss_d.item():.3f} loss_g {loss_g.item():.3f} "
                  f"D(real) {d_real.mean().item():+.2f} D(fake) {d_fake.mean().item():+.2f} "
                  + (f"CE real {ce_real.item():.3f} (acc {acc_real.item():.2f}) fake {ce_fake.item():.3f} " if aux else "")
                  + f"lr x{f:.3f} {rate:.0f} img/s "
                  f"elapsed {(elapsed_before + el) / 60:.1f}min ETA {(args.steps - done) * args.batch / rate / 60:.1f}min",
                  flush=True)
        if rt.main and (done % args.ckpt_every == 0 or done in (args.steps, stop)):
            save(done, elapsed_before + time.time() - t0)
        if rt.main and getattr(args, "snapshot_every", 0) and done % args.snapshot_every == 0:
            os.makedirs(os.path.join(args.out, "snapshots"), exist_ok=True)
            torch.save({"ema": ema.state_dict(), "args": vars(args), "step": done},
                       os.path.join(args.out, "snapshots", f"ema_{done:06d}.pt"))
    scale_out = rt.record(args.batch)
    rt.close()
    if stop < args.steps:
        print(f"[stop] --stop-at {stop}: checkpoint written, {args.steps - stop} steps of the schedule left "
              f"(resume with --resume)", flush=True)
        return {"steps": stop, "stopped_early": True}
    if not rt.main:
        return {"steps": args.steps, "rank": rt.rank}
    wall = elapsed_before + time.time() - t0
    torch.save({"ema": ema.state_dict(), "args": vars(args), "step": args.steps}, os.path.join(args.out, "final.pt"))
    summary = {"steps": args.steps, "wall_time_s": round(wall, 1), "an": args.an, "ch": args.ch, "batch": args.batch,
               "n_dis": args.n_dis, "lr_g": args.lr_g, "lr_d": args.lr_d, "lr_decay_from": decay_from, "aux_weight": aux, "seed": args.seed, "g_parameters": n_g,
               **scale_out}
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=2)
    print(f"[done] {args.steps} steps in {wall / 60:.1f} min -> {args.out}/final.pt", flush=True)
    return summary
