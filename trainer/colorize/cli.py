"""colorize: the PONO-MS grayscale -> colour translator (``translate`` task; model ``colorize-pono``).

  train     train the translator (PONO-MS; ``--no-pono-ms`` for the IN-only ablation)
  evaluate  PSNR / SSIM on the held-out test photos against the gray copy
  curve     validation curves of runs as a small PNG
  export    ONNX (opset 17, dynamic N/H/W) + parity fixture + manifest + NOTICE
"""
from __future__ import annotations

from .. import cli, registry


registry.add_served(lambda m: m["task"] == "translate", "trainer.colorize.export:load_served")
registry.add("int8_sample", lambda m: m["task"] == "translate", "trainer.colorize.export:int8_sample")
registry.add("int8_score", lambda m: m["task"] == "translate", "trainer.colorize.export:int8_score")


def _hinted_photos(p, checkpoint_help: str) -> None:
    """The arguments evaluate-hints and tune-hybrid share: the hint network, the photos and the hint counts."""
    p.add_argument("checkpoint", help=checkpoint_help)
    p.add_argument("--split", choices=("test", "val"), default="val")
    p.add_argument("--short-side", type=int, default=256)
    p.add_argument("--hints", default="0,1,3,10,50", help="hint counts (5 x 5 patches of the true colour, seeded)")


def register(sub) -> None:
    """Add the colorize verbs to ``sub`` (argparse subparsers)."""
    t = cli.verb(sub, "train", "trainer.colorize.train:train", "train the colorizer")
    cli.add_run_folder(t, log_every=100, ckpt_every=250)
    cli.add_runtime(t)
    t.add_argument("--steps", type=int, default=8000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--crop", type=int, default=64)
    t.add_argument("--ngf", type=int, default=24)
    t.add_argument("--n-blocks", type=int, default=6)
    t.add_argument("--no-pono-ms", dest="pono_ms", action="store_false", help="IN-only ablation")
    t.add_argument("--loss", choices=["classify", "l1"], default="classify",
                   help="classify: ab-bin distribution + class-rebalanced CE (Zhang 2016); l1: regressed chroma (1.0.0)")
    t.add_argument("--photos", default="all",
                   help="photo collections, comma-separated or 'all' (trainer.data.photos.COLLECTION_PACKAGES); "
                        "the 1.0.0 model used wallpapers,opencv")
    t.add_argument("--luma-jitter", type=float, default=0.0, help="per-crop gamma exp(U(-g, g)) on RGB (hue kept)")
    t.add_argument("--prior-crops", type=int, default=2000, help="training crops counted for the ab prior (classify)")
    t.add_argument("--rebalance-lambda", type=float, default=0.5,
                   help="classify: lambda of the class rebalancing (Zhang 2016 eq. 4; smaller = rarer colours weigh more)")
    t.add_argument("--init", help="fine-tune: start from this checkpoint's EMA weights (and ab prior), fresh optimizer and schedule")
    t.add_argument("--gan-weight", type=float, default=0.0, help="PatchGAN term weight (0 = L1 alone)")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights used for validation/export")
    t.add_argument("--val-crops", type=int, default=96, help="fixed validation crops from the held-out photos")
    t.add_argument("--val-crop", type=int, default=96, help="validation crop size in px")

    h = cli.verb(sub, "train-hints", "trainer.colorize.hints:train",
                 "train the colour-hints path (Zhang et al. 2017) on a frozen classify-head colorizer")
    cli.add_run_folder(h, log_every=250, ckpt_every=250)
    cli.add_runtime(h)
    h.add_argument("--body", required=True, help="classify-head checkpoint (best.pt / checkpoint.pt) of the automatic colorizer")
    h.add_argument("--chroma-gain", type=float, default=0.8, help="the automatic model's chroma gain (as exported)")
    h.add_argument("--hint-width", type=int, default=16, help="base width of the hint U-Net")
    h.add_argument("--steps", type=int, default=12000)
    h.add_argument("--batch", type=int, default=16)
    h.add_argument("--crop", type=int, default=128, help="training crop side (a multiple of 16)")
    h.add_argument("--photos", default="all")
    h.add_argument("--lr", type=float, default=3e-4)
    h.add_argument("--ema", type=float, default=0.999)
    h.add_argument("--val-crops", type=int, default=64)
    h.add_argument("--val-crop", type=int, default=128)

    v = cli.verb(sub, "evaluate-hints", "trainer.colorize.hints_eval:main",
                 "hinted colorizer (network alone, --pipeline) vs Levin et al. 2004 at 0/1/3/10/50 hints: PSNR, SSIM, colourfulness, hue agreement, time")
    _hinted_photos(v, "a train-hints run's best.pt or checkpoint.pt")
    v.add_argument("--levin", action="store_true", help="also Levin et al. 2004 with the same hints (SciPy sparse solve)")
    v.add_argument("--pipeline", action="store_true",
                   help="also the shipped pipeline (network prior x confidence + edge-aware hint propagation, "
                        "trainer/colorize/hybrid.py); the figure then shows it")
    v.add_argument("--limit", type=int, default=0, help="only the first N photos (0 = all)")
    v.add_argument("--figure", help="write a gray | Levin | ours (10 hints) | ours (none) | original PNG grid here")
    v.add_argument("--figure-only", action="store_true", help="with --figure: only the figure")
    v.add_argument("--work-side", type=int, default=0,
                   help="run ours as the service does with serving.working_max_side = N: a photo whose longer side is "
                        "above N is colorized at that size, its chroma upsampled onto the full-resolution luma (0 = full size)")
    v.add_argument("--sectors", action="store_true", help="also the Lab hue-sector shares of truth vs output without hints (the sepia analysis)")
    v.add_argument("--threads", type=int, default=1)
    v.add_argument("--json", help="write the metrics here")

    tu = cli.verb(sub, "tune-hybrid", "trainer.colorize.hints_eval:tune_main",
                  "the hybrid's blend constants (unsure_reach x unsure_fill x unsure_spread) on the validation photos at each hint count")
    _hinted_photos(tu, "the hint network (a train-hints run's best.pt)")
    tu.add_argument("--unsure-reach", default="0.5,0.75", help="comma list: the hints' colour as reach where the network is unsure")
    tu.add_argument("--unsure-fill", default="0.3,0.6", help="comma list: the hints' colour added to the prior where the network is unsure")
    tu.add_argument("--unsure-spread", default="5,10", help="comma list: the hints' colour spread (CIE std) at which those count fully")
    tu.add_argument("--limit", type=int, default=0, help="only the first N photos (0 = all)")
    tu.add_argument("--threads", type=int, default=1)
    tu.add_argument("--json", help="write the results here")

    hx = cli.verb(sub, "export-hints", "trainer.colorize.hints_export:export", "export the hinted colorizer (ONNX gray + hints -> rgb) + fixture + manifest")
    hx.add_argument("checkpoint")
    hx.add_argument("--out-dir", required=True)
    hx.add_argument("--pipeline", action="store_true",
                    help="export the hybrid: network prior x confidence + edge-aware hint propagation (trainer/colorize/hybrid.py)")
    for name, what in (("reach", "reach"), ("fill", "fill"), ("spread", "spread")):
        hx.add_argument(f"--unsure-{name}", type=float, default=None,
                        help=f"with --pipeline: SolveConfig.unsure_{what} (default: the shipped value; choose it with tune-hybrid)")
    hx.add_argument("--name", default="colorize-hints")
    hx.add_argument("--version", required=True)
    hx.add_argument("--default", action="store_true", help="serving.default (the task's default model)")
    hx.add_argument("--metrics", help="`colorize evaluate-hints --json` output for the manifest")
    hx.add_argument("--working-max-side", type=int, default=768,
                    help="serving.working_max_side: the longer side the service colorizes at (choose it on validation with "
                         "`evaluate-hints --work-side`)")
    hx.add_argument("--command", default="", help="the training command, for the manifest")

    e = cli.verb(sub, "evaluate", "trainer.colorize.evaluate:main",
                 "PSNR, SSIM, colourfulness ratio and AuC on the held-out test photos (or --split val)")
    e.add_argument("checkpoints", nargs="*", help="label=path/to/best.pt pairs")
    e.add_argument("--outputs", action="append", default=[], help="label=DIR: score DIR/<photo>@<side>.out.png files")
    e.add_argument("--dump", help="write the gray test photos as DIR/<photo>@<side>.png (for the service), then exit")
    e.add_argument("--split", choices=("test", "val"), default="test")
    e.add_argument("--short-side", type=int, default=256)
    e.add_argument("--per-photo", action="store_true", help="also print PSNR / colourfulness per photo")
    e.add_argument("--json", help="write the metrics here")
    e.add_argument("--figure", help="write a gray | outputs | original PNG grid of the 8 test photos here")
    e.add_argument("--figure-side", type=int, default=128, help="short side of the figure's photos")
    e.add_argument("--chroma-gain", default="1", help="comma-separated gains on the decoded ab (classify head; "
                   "one row per checkpoint and gain; choose it with --split val)")

    cli.add_curve(sub, "val_ce,val_psnr,val_colourfulness")

    x = cli.verb(sub, "export", "trainer.colorize.export:main", "export ONNX + fixture + manifest")
    cli.add_export(x, "colorize-pono")
    x.add_argument("--metrics", help="metrics JSON from `colorize evaluate`")
    x.add_argument("--loss-comparison", help="`colorize evaluate --json` of the L1 vs L1+PatchGAN runs, for the manifest")
    x.add_argument("--loss-runs", nargs="*", default=[], help="label=run_dir pairs of those runs (their best val L1)")
    x.add_argument("--chroma-gain", type=float, default=1.0,
                   help="gain on the decoded ab baked into the graph (classify head; chosen on validation)")
    x.add_argument("--fixture-dir", help="where the parity fixture goes (default: <out-dir>/fixture)")
