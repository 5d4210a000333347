"""upscale: the PONO-MS x4 photo upscaler (``upscale`` task; model ``upscale-pono``, issue 33).

  train     train it (L1; clean bicubic + Real-ESRGAN-style degraded pairs; ``--no-pono-ms`` for the ablation)
  evaluate  Y-PSNR / SSIM (4 px border) on clean and degraded x4 inputs vs bicubic, Lanczos, NLM + Lanczos
  curve     validation curves of runs as a small PNG
  export    ONNX (opset 17, dynamic N/H/W) + parity fixture + manifest
"""
from __future__ import annotations

from .. import cli, registry


registry.add_served(lambda m: m["task"] == "upscale", "trainer.upscale.export:load_served")
registry.add("int8_sample", lambda m: m["task"] == "upscale", "trainer.upscale.export:int8_sample")


def register(sub) -> None:
    """Add the upscale verbs to ``sub`` (argparse subparsers)."""
    t = cli.verb(sub, "train", "trainer.upscale.train:train", "train the x4 upscaler")
    cli.add_run_folder(t, log_every=250, ckpt_every=250)
    cli.add_runtime(t)
    t.add_argument("--steps", type=int, default=12000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--crop", type=int, default=192, help="HR crop side (multiple of 16; LR = crop / 4)")
    t.add_argument("--scales", default="384,512,768", help="short sides of the photo pyramid crops are drawn from")
    t.add_argument("--nf", type=int, default=32, help="base width")
    t.add_argument("--n-mid", type=int, default=4, help="residual blocks at LR/4")
    t.add_argument("--n-lr", type=int, default=4, help="residual blocks at LR")
    t.add_argument("--no-pono-ms", dest="pono_ms", action="store_false", help="the ablation without PONO-MS (= --shortcut none)")
    t.add_argument("--shortcut", choices=("none", "ms", "pono_ms", "pono_dms"), default=None,
                   help="the PONO paper's Table 3 row: none, MS without PONO, PONO-MS, PONO-DMS (default pono_ms)")
    t.add_argument("--dms-channels", choices=("multi", "one"), default="multi", help="PONO-DMS: beta, gamma per channel or one")
    t.add_argument("--dms-layers", type=int, choices=(1, 2), default=1, help="PONO-DMS: convolutions in the generator")
    t.add_argument("--dms-kernel", type=int, choices=(3, 5), default=3, help="PONO-DMS: kernel size")
    t.add_argument("--init", help="start from this checkpoint's EMA weights (strict=False: a PONO-MS checkpoint into PONO-DMS); "
                                   "a fresh optimizer and schedule")
    t.add_argument("--clean-share", type=float, default=0.3, help="share of clean bicubic pairs (rest degraded)")
    t.add_argument("--light-share", type=float, default=0.0,
                   help="share of one-stage resize + JPEG + noise pairs (degrade.light); the rest are second-order")
    t.add_argument("--photos", default="all")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--ema", type=float, default=0.999)
    t.add_argument("--val-crops", type=int, default=48)
    t.add_argument("--val-crop", type=int, default=192)
    t.add_argument("--val-photos", type=int, default=0,
                   help="also score the first N whole validation photos (the test protocol; 0 = off)")
    t.add_argument("--val-photo-side", type=int, default=384, help="short side of those photos (px)")
    t.add_argument("--select", choices=("crops", "photos"), default="crops",
                   help="best.pt by the crops' mean gain or the whole photos' (needs --val-photos)")

    e = cli.verb(sub, "evaluate", "trainer.upscale.evaluate:main",
                 "Y-PSNR / SSIM on clean and degraded x4 inputs: checkpoints vs bicubic, Lanczos, NLM + Lanczos")
    e.add_argument("checkpoints", nargs="*", help="label=path/to/best.pt pairs")
    e.add_argument("--split", choices=("test", "val"), default="val")
    e.add_argument("--short-side", type=int, default=0, help="resize the photos first (0 = as stored, test photos native)")
    e.add_argument("--limit", type=int, default=0, help="only the first N photos")
    e.add_argument("--figure", help="a nearest | Lanczos | ours | true crop grid (degraded inputs) here")
    e.add_argument("--nlm-h", type=float, default=3.0, help="OpenCV NLM filter strength h = hColor (the baseline; 3 chosen on 20 validation photos among 2, 3, 4, 7, 10)")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--bench-side", type=int, default=0, help="also time one pass per checkpoint on a side x side LR input (0 = off)")
    e.add_argument("--json")

    cli.add_curve(sub, "val_clean_gain,val_degraded_gain")

    x = cli.verb(sub, "export", "trainer.upscale.export:main", "export ONNX + fixture + manifest")
    cli.add_export(x, "upscale-pono")
    x.add_argument("--metrics", help="`upscale evaluate --json` output (test split) for the manifest")
