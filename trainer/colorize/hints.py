"""User colour hints for the PONO-MS colorizer (issue 29; Zhang, Zhu, Isola, Geng, Lin, Yu & Efros 2017,
"Real-Time User-Guided Image Colorization with Learned Deep Priors", SIGGRAPH).

The network (:class:`HintedColorizer`) is the automatic colorizer (:class:`~trainer.colorize.model.Translator`
with the classification head: PONO-MS body, ab distribution at H/2, annealed mean) **plus** a local-hints
regression path, one graph:

* **Hint input** ``hints``: B x 3 x H x W float32 = ``(a / 110, b / 110, m)`` where ``m`` in {0, 1} marks hinted
  pixels and (a, b) is the CIE a*b* wanted there (0 elsewhere). This is the paper's local-hints input
  (ab + mask, 3 channels).
* **Hint path** (:class:`HintNet`, ours): a U-Net without normalization (IN and PONO would wash out a sparse
  input) from full resolution down to H/16 and back up to H/2. Its encoder sees the luma, the hints and, at
  every scale, the hints average-pooled to that scale (so a 1-px hint reaches the coarse levels undiluted);
  at H/2 it also takes the body's H/2 features (semantics) and the automatic ab. It outputs ab_hint
  (B x 2 x H/2 x W/2, CIE units, ``128 tanh``) and a gate ``g`` in (0, 1).
* **Blend**: ``ab = (1 - g') ab_auto + g' ab_hint`` at H/2 with ``g' = g * max(m)`` per image, so an image
  without hints gets exactly the automatic colorizer's output (the API's no-hints contract). Then the same
  decoding as the automatic model: bilinear x2, L* from the input luma, Lab -> sRGB, chroma kept with the
  input's luma (its BT.601 luma is the input's).

Training (:func:`train`): the body and its classification head are the automatic model's (loaded from a
classify-head checkpoint) and stay **frozen**; only the hint path learns, with a Huber loss on ab at H/2
(``delta`` 10 CIE units; the paper's regression loss is Huber too) on images with hints. Hints are sampled
as the paper does (:func:`sample_hints`): the number of points geometric with p = 1/8, each a square patch of
side U{1..9} holding the patch's mean true ab. Evaluation hints (:func:`fixed_hints`): n seeded 5 x 5 patches
of the true mean colour.
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
from torch import nn

from ..color import ab_onto_luma, rgb_to_lab, rgb_to_luma
from .. import distributed
from ..data import photos, stream
from ..loop import ema_update, lr_at, psnr, stop_step
from .model import Translator
from .quantize import annealed_mean

#: H and W must be multiples of this (the hint path goes down to H/16).
HINT_SIZE_MULTIPLE = 16
#: a/b are divided by this in the hint input.
AB_SCALE = 110.0


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation), nn.LeakyReLU(0.2, True))


class HintNet(nn.Module):
    """The hint path (module docstring). ``forward(x, hints, feats, ab_auto)``: luma B x 1 x H x W in [-1, 1],
    hints B x 3 x H x W, body features B x C x H/2 x W/2, automatic ab B x 2 x H/2 x W/2 (CIE units) ->
    (ab_hint B x 2 x H/2 x W/2 in CIE units, gate B x 1 x H/2 x W/2 in (0, 1)). H, W multiples of 16.

    Args:
        feat_channels: C, the body's H/2 width (2 * ngf).
        width: base width of the U-Net (levels width * (1, 2, 3, 4, 4)).
    """

    def __init__(self, feat_channels: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.e0 = _conv(4, w)                                   # H
        self.e1 = _conv(w + 3, 2 * w, 2)                        # H/2
        self.f1 = nn.Conv2d(feat_channels + 2, 2 * w, 1)        # body features + ab_auto at H/2
        self.e2 = _conv(2 * w + 3, 3 * w, 2)                    # H/4
        self.e3 = _conv(3 * w + 3, 4 * w, 2)                    # H/8
        self.e4 = _conv(4 * w + 3, 4 * w, 2)                    # H/16
        self.mid = nn.Sequential(_conv(4 * w, 4 * w, dilation=2), _conv(4 * w, 4 * w, dilation=4))
        self.d3 = _conv(8 * w, 4 * w)
        self.d2 = _conv(7 * w, 3 * w)
        self.d1 = _conv(5 * w, 2 * w)
        self.out = nn.Conv2d(2 * w, 3, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        with torch.no_grad():
            self.out.bias.copy_(torch.tensor([0.0, 0.0, -2.0]))

    @staticmethod
    def _up(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x, hints, feats, ab_auto):
        h1, h2, h3 = (F.avg_pool2d(hints, k) for k in (2, 4, 8))
        s0 = self.e0(torch.cat([x, hints], 1))
        s1 = self.e1(torch.cat([s0, hints], 1))
        s1 = s1 + self.f1(torch.cat([feats, ab_auto / AB_SCALE], 1))
        s1h = torch.cat([s1, h1], 1)
        s2 = self.e2(s1h)
        s3 = self.e3(torch.cat([s2, h2], 1))
        s4 = self.mid(self.e4(torch.cat([s3, h3], 1)))
        d3 = self.d3(torch.cat([self._up(s4, s3), s3], 1))
        d2 = self.d2(torch.cat([self._up(d3, s2), s2], 1))
        d1 = self.d1(torch.cat([self._up(d2, s1), s1], 1))
        o = self.out(d1)
        return 128.0 * torch.tanh(o[:, :2] / 128.0 + ab_auto / 128.0), torch.sigmoid(o[:, 2:3])


class HintedColorizer(nn.Module):
    """Automatic colorizer + hint path (module docstring).

    ``forward(x, hints)``: luma B x 1 x H x W in [-1, 1], hints B x 3 x H x W (a/110, b/110, mask) ->
    RGB B x 3 x H x W in [-1, 1] whose BT.601 luma is the input's. ``ab_half(x, hints)`` -> (ab B x 2 x H/2 x
    W/2 in CIE units, the gate). Raises ValueError for H or W not a multiple of 16 (Python ints).

    Args:
        body: a classify-head :class:`Translator` (its ``chroma_gain`` applies to the automatic ab).
        width: the hint path's base width.
    """

    def __init__(self, body: Translator, width: int = 16) -> None:
        super().__init__()
        if body.head_kind != "classify":
            raise ValueError("HintedColorizer needs a classify-head Translator")
        self.body = body
        self.hint_net = HintNet(body.cls_head[0].in_channels, width)

    def ab_half(self, x: torch.Tensor, hints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ab, gate, _, _ = self.ab_half_and_logits(x, hints)
        return ab, gate

    def ab_half_and_logits(self, x: torch.Tensor, hints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`ab_half` plus the body's B x Q x H/2 x W/2 logits and its automatic ab (B x 2 x H/2 x W/2, CIE
        units: annealed mean x chroma gain), from one pass of the body."""
        h, w = x.shape[-2], x.shape[-1]
        if isinstance(h, int) and (h % HINT_SIZE_MULTIPLE or w % HINT_SIZE_MULTIPLE):
            raise ValueError(f"HintedColorizer: H and W must be multiples of {HINT_SIZE_MULTIPLE}, got {h}x{w}")
        feats = self.body.features_half(x)
        logits = self.body.cls_head(feats)
        ab_auto = annealed_mean(logits, self.body.ab_bins, self.body.temperature) * self.body.chroma_gain
        ab_hint, gate = self.hint_net(x, hints, feats, ab_auto)
        has = torch.amax(hints[:, 2:3], dim=(2, 3), keepdim=True)
        gate = gate * has
        return ab_auto * (1 - gate) + ab_hint * gate, gate, logits, ab_auto

    def decode(self, x: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """H/2 ab (CIE units) + luma -> RGB in [-1, 1] (bilinear x2, L* from the luma, chroma with the luma)."""
        return ab_onto_luma(x, F.interpolate(ab, scale_factor=2.0, mode="bilinear", align_corners=False))

    def forward(self, x: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        return self.decode(x, self.ab_half(x, hints)[0])


def true_ab(y: torch.Tensor) -> torch.Tensor:
    """CIE a*b* of an RGB batch: B x 3 x H x W in [-1, 1] -> B x 2 x H x W (CIE units)."""
    return rgb_to_lab((y + 1) * 0.5)[:, 1:]


def _patch_hints(ab: torch.Tensor, points: list[list[tuple[int, int, int]]]) -> torch.Tensor:
    """Hint tensors from per-image lists of (row, col, side) patches holding the patch's mean true ab.
    ab: B x 2 x H x W (CIE). Returns float32 B x 3 x H x W (a/110, b/110, mask)."""
    b, _, h, w = ab.shape
    out = torch.zeros(b, 3, h, w, dtype=torch.float32)
    for i, pts in enumerate(points):
        for r, c, s in pts:
            r0, c0 = max(0, r - s // 2), max(0, c - s // 2)
            r1, c1 = min(h, r0 + s), min(w, c0 + s)
            mean = ab[i, :, r0:r1, c0:c1].reshape(2, -1).mean(1)
            out[i, 0:2, r0:r1, c0:c1] = (mean / AB_SCALE)[:, None, None]
            out[i, 2, r0:r1, c0:c1] = 1.0
    return out


def sample_hints(ab: torch.Tensor, rng: np.random.Generator, p: float = 1 / 8, no_hint_share: float = 0.0,
                 max_side: int = 9) -> torch.Tensor:
    """Training hints as Zhang et al. 2017 sample them: per image, with probability ``no_hint_share`` none,
    else a geometric(p) number of points (>= 1) at uniform positions, each a square patch of side U{1..max_side}
    holding the patch's mean true ab. ab: B x 2 x H x W (CIE units) -> B x 3 x H x W float32."""
    b, _, h, w = ab.shape
    pts = []
    for _ in range(b):
        if rng.random() < no_hint_share:
            pts.append([])
            continue
        n = int(rng.geometric(p))
        pts.append([(int(rng.integers(h)), int(rng.integers(w)), int(rng.integers(1, max_side + 1))) for _ in range(n)])
    return _patch_hints(ab, pts)


def fixed_hints(ab: torch.Tensor, n: int, seed: int = 0, side: int = 5) -> torch.Tensor:
    """Evaluation hints: ``n`` seeded ``side`` x ``side`` patches of the true mean ab per image (positions
    uniform, drawn from ``seed`` + image index, the same for every method). ab: B x 2 x H x W -> B x 3 x H x W."""
    b, _, h, w = ab.shape
    pts = []
    for i in range(b):
        rng = np.random.default_rng(seed + i)
        pts.append([(int(rng.integers(side // 2, h - side // 2)), int(rng.integers(side // 2, w - side // 2)), side) for _ in range(n)])
    return _patch_hints(ab, pts)


def _to_pair(u8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 B x 3 x H x W -> (luma B x 1 x H x W uint8-rounded, RGB B x 3 x H x W), float32 in [-1, 1]."""
    y = u8.float().div(127.5).sub(1)
    return torch.round((rgb_to_luma(y) + 1) * 127.5).clamp(0, 255) / 127.5 - 1, y


def sample_with_hints(k: int, crop: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``k`` of an indexed run (:mod:`trainer.data.stream`): (its uint8 3 x c x c crop, its training hints
    3 x c x c from :func:`sample_hints` with the generator ``(seed + 3, k)``)."""
    _, y = _to_pair(crop[None])
    return crop, sample_hints(true_ab(y), stream.sample_rng(seed + 3, k, 1))[0]


def load_hinted(path: str, device: str = "cpu") -> tuple[HintedColorizer, dict]:
    """A :class:`HintedColorizer` from a hints run's ``best.pt`` / ``checkpoint.pt`` (EMA weights when present).
    Returns (model in eval mode, the run's args)."""
    ck = torch.load(path, map_location=device)
    a = ck["args"]
    body = Translator(1, a["ngf"], a["n_blocks"], True, "colorize", "classify", chroma_gain=a["chroma_gain"])
    model = HintedColorizer(body, a["hint_width"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck.get("ema", ck["model"]).items()})
    return model.eval(), a


def train(args: Namespace) -> dict:
    """Train the hint path of a :class:`HintedColorizer` (body frozen, from ``--body``); returns the summary.

    Validation every ``--log-every`` steps on fixed held-out crops with :func:`fixed_hints` (10 patches):
    PSNR with 0 and 10 hints, and the Huber loss; ``best.pt`` = the EMA weights with the best 10-hint PSNR.
    Under torchrun each process computes its share of the global ``--batch`` (:mod:`trainer.distributed`);
    rank 0 validates, logs and writes the checkpoints.
    """
    collections = photos.parse_collections(args.photos)
    rt, share = distributed.start(args, indexed=photos.is_streamed(collections))
    print = rt.print  # noqa: A001 - rank 0 logs
    device = rt.device
    ck = torch.load(args.body, map_location="cpu")
    ba = ck["args"]
    body = Translator(1, ba["ngf"], ba["n_blocks"], ba.get("pono_ms", True), "colorize", "classify", chroma_gain=args.chroma_gain)
    body.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck.get("ema", ck["model"]).items()})
    vars(args).update(ngf=ba["ngf"], n_blocks=ba["n_blocks"])
    model = HintedColorizer(body, args.hint_width).to(device)
    for p in model.body.parameters():
        p.requires_grad_(False)
    model.body.eval()
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.Adam(model.hint_net.parameters(), lr=args.lr, betas=(0.9, 0.999))

    train_set, val_set = photos.split(photos.index(collections))
    crops = photos.training_source(train_set, collections, args.crop, photos.SCALES, args.seed)
    hint_rng = np.random.default_rng(args.seed + 3)
    vu8 = photos.PhotoCrops(val_set, crop=args.val_crop, seed=12345).batch(args.val_crops)

    def pair(u8):
        x, y = _to_pair(u8)
        return x.to(device), y.to(device)

    vx, vy = pair(vu8)
    vab = true_ab(vy)
    vh0, vh10 = torch.zeros(vx.shape[0], 3, *vx.shape[-2:], device=device), fixed_hints(vab.cpu(), 10, seed=777).to(device)
    print(f"[data] {len(train_set)} training / {len(val_set)} validation photos; {args.val_crops} validation crops of "
          f"{args.val_crop}px; gray copy {psnr(vx.expand_as(vy), vy):.2f}dB", flush=True)
    print(f"[run] {rt.describe(args.batch)}, lr {args.lr}", flush=True)
    best = {"val_psnr10": -1.0, "step": 0}
    start, elapsed_before = 0, 0.0
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    if args.resume and os.path.exists(ckpt_path):
        c = torch.load(ckpt_path, map_location=device)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in c["model"].items()})
        ema.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in c["ema"].items()})
        opt.load_state_dict(c["opt"])
        if not rt.indexed:  # one process, its own sampler: continue the same data order
            crops.rng.bit_generator.state = c["data_rng"]; hint_rng.bit_generator.state = c["hint_rng"]
            torch.set_rng_state(c["torch_rng"])
        start, elapsed_before, best = c["step"], c["elapsed_s"], c["best"]
        print(f"[resume] from step {start} (written by {c['args'].get('world_size', 1)} process(es))", flush=True)
    t0 = time.time(); t_last, n_last = t0, 0
    stop = stop_step(args)
    rec = None
    batches = (stream.IndexedBatches(crops, functools.partial(sample_with_hints, seed=args.seed), args.batch, share,
                                     start, stop, args.workers) if rt.indexed else None)
    net = rt.wrap(model, "ab_half")
    for step in range(start, stop):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr)
        if batches is not None:
            u8, hints = batches.next()
            x, y = pair(u8)
            ab, hints = true_ab(y), hints.to(device)
        else:
            x, y = pair(crops.batch(args.batch))
            ab = true_ab(y)
            hints = sample_hints(ab.cpu(), hint_rng).to(device)
        with rt.autocast():
            pred, gate = net(x, hints)
        tgt = F.avg_pool2d(ab, 2)
        loss = F.huber_loss(pred.float(), tgt, delta=10.0) / AB_SCALE
        rt.step(loss, opt)
        ema_update(ema, model, step, args.ema)
        n_last += args.batch
        done = step + 1
        if done % args.log_every == 0 or done == args.steps:
            loss_all = rt.mean(loss.item())
        if rt.main and (done % args.log_every == 0 or done == args.steps):
            with torch.no_grad():
                o0 = ema(vx, vh0)
                ab10, g10 = ema.ab_half(vx, vh10)
                o10 = ema.decode(vx, ab10)
            now = time.time()
            ips = n_last / (now - t_last)
            elapsed = elapsed_before + now - t0
            rec = {"step": done, "loss": round(loss_all, 5), "val_psnr0": round(psnr(o0, vy), 3),
                   "val_psnr10": round(psnr(o10, vy), 3), "val_gate10": round(g10.mean().item(), 4),
                   "gray_psnr": round(psnr(vx.expand_as(vy), vy), 3)}
            if rec["val_psnr10"] > best["val_psnr10"]:
                best = {"val_psnr10": rec["val_psnr10"], "val_psnr0": rec["val_psnr0"], "step": done}
                torch.save({"model": ema.state_dict(), "args": vars(args), "step": done, "best": best}, os.path.join(args.out, "best.pt"))
            with open(os.path.join(args.out, "curve.json"), "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(f"[train] step {done}/{args.steps} huber {rec['loss']:.4f} val PSNR 0 hints {rec['val_psnr0']:.2f} / 10 hints "
                  f"{rec['val_psnr10']:.2f}dB (gray {rec['gray_psnr']:.2f}) gate {rec['val_gate10']:.3f} (best {best['val_psnr10']:.2f} "
                  f"@ {best['step']}) {ips:.1f} img/s elapsed {elapsed / 60:.1f}min ETA {(args.steps - done) * args.batch / max(ips, 1e-9) / 60:.1f}min",
                  flush=True)
            t_last, n_last = now, 0
        if rt.main and (done % args.ckpt_every == 0 or done in (args.steps, stop)):
            torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                        "data_rng": getattr(crops, "rng", hint_rng).bit_generator.state, "hint_rng": hint_rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "step": done, "best": best,
                        "elapsed_s": elapsed_before + time.time() - t0, "args": vars(args)}, ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)
    summary = {"steps": stop, "final": rec, "best": best, **rt.record(args.batch, args.lr, batches),
               "args": vars(args)}
    if rt.main:
        with open(os.path.join(args.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
    rt.close()
    return summary
