"""Command line of the trainer: ``/usr/bin/python3 -m trainer <command> [options]``.

Commands:
  data       install the Debian wallpaper packages and print the photo index
  train      train the colorization translator (PONO-MS, or ``--no-pono-ms`` for the ablation)
  train-inpaint  train the two-stage inpainter (``--norm an`` or ``--norm in``)
  train-classifier  train the Fashion-MNIST evaluator (``--norm bn`` or ``--norm an``: mixture AN)
  train-gan  train the class-conditional Fashion-MNIST GAN (AN, or ``--no-an`` for the ablation)
  evaluate-gan  FID / intra-FID / accuracy / IS-style score of GANs in the evaluator's feature space
  evaluate   PSNR/SSIM on the held-out test photos (model(s) vs the gray-copy baseline)
  export     ONNX (opset 17, dynamic batch/height/width) + parity fixture + manifest
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m trainer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("data", help="install the wallpaper packages and list the photos")

    t = sub.add_parser("train", help="train the colorizer")
    t.add_argument("--out", required=True, help="run folder (checkpoint.pt, best.pt, final.pt, summary.json)")
    t.add_argument("--steps", type=int, default=8000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--crop", type=int, default=64)
    t.add_argument("--ngf", type=int, default=24)
    t.add_argument("--n-blocks", type=int, default=6)
    t.add_argument("--no-pono-ms", dest="pono_ms", action="store_false", help="IN-only ablation")
    t.add_argument("--gan-weight", type=float, default=0.0, help="PatchGAN term weight (0 = L1 alone)")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights used for validation/export")
    t.add_argument("--val-crops", type=int, default=96, help="fixed validation crops from the held-out photos")
    t.add_argument("--val-crop", type=int, default=96, help="validation crop size in px")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    t.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads (default: cores)")
    t.add_argument("--log-every", type=int, default=100, help="progress + validation every N steps")
    t.add_argument("--ckpt-every", type=int, default=250)
    t.add_argument("--resume", action="store_true")

    ti = sub.add_parser("train-inpaint", help="train the inpainter (AN or IN in the refine stage)")
    ti.add_argument("--out", required=True)
    ti.add_argument("--norm", choices=["an", "in"], default="an")
    ti.add_argument("--steps", type=int, default=3000)
    ti.add_argument("--batch", type=int, default=16)
    ti.add_argument("--crop", type=int, default=64)
    ti.add_argument("--width", type=int, default=24)
    ti.add_argument("--entities", type=int, default=16, help="AN's n")
    ti.add_argument("--lambda-o", type=float, default=1e-4, help="orthogonality loss weight (eq. 1)")
    ti.add_argument("--lr", type=float, default=1e-4)
    ti.add_argument("--ema", type=float, default=0.999)
    ti.add_argument("--val-crops", type=int, default=64)
    ti.add_argument("--seed", type=int, default=0)
    ti.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ti.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ti.add_argument("--log-every", type=int, default=100)
    ti.add_argument("--ckpt-every", type=int, default=250)
    ti.add_argument("--resume", action="store_true")
    ti.add_argument("--init", help="fine-tune: start from this checkpoint.pt's weights (fresh optimizer and schedule)")
    ti.add_argument("--adv-weight", type=float, default=0.0,
                    help="lambda_adv: PatchGAN (LSGAN) term on the composited output (paper section 5.1: 1e-3; 0 = L1 only)")
    ti.add_argument("--scales", default=None,
                    help="short sides (px) of the training/validation photo pyramid, comma-separated (default "
                         "trainer.data.photos.SCALES: 160,256,384,512); e.g. 128,144,160 "
                         "to train at the scale the service inpaints at (whole photo shrunk to 160 px)")

    tc = sub.add_parser("train-classifier", help="train the Fashion-MNIST evaluator (BN or mixture AN)")
    tc.add_argument("--out", required=True)
    tc.add_argument("--norm", choices=["bn", "an"], default="bn")
    tc.add_argument("--k", type=int, default=5, help="mixture AN's K affine components")
    tc.add_argument("--width", type=int, default=16)
    tc.add_argument("--epochs", type=int, default=3)
    tc.add_argument("--batch", type=int, default=128)
    tc.add_argument("--lr", type=float, default=0.1)
    tc.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (smoke runs; 0 = all)")
    tc.add_argument("--seed", type=int, default=0)
    tc.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    tc.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    tc.add_argument("--log-every", type=int, default=100)

    tg = sub.add_parser("train-gan", help="train the class-conditional Fashion-MNIST GAN")
    tg.add_argument("--out", required=True)
    tg.add_argument("--no-an", dest="an", action="store_false", help="the same networks without AN (ablation)")
    tg.add_argument("--ch", type=int, default=32)
    tg.add_argument("--entities", type=int, default=16, help="AN's n")
    tg.add_argument("--steps", type=int, default=3000)
    tg.add_argument("--batch", type=int, default=64)
    tg.add_argument("--n-dis", type=int, default=1, help="D steps per G step")
    tg.add_argument("--lr-g", type=float, default=1e-4)
    tg.add_argument("--lr-d", type=float, default=4e-4)
    tg.add_argument("--lambda-o", type=float, default=1e-4)
    tg.add_argument("--ema", type=float, default=0.999)
    tg.add_argument("--seed", type=int, default=0)
    tg.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    tg.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    tg.add_argument("--log-every", type=int, default=100)
    tg.add_argument("--ckpt-every", type=int, default=250)
    tg.add_argument("--snapshot-every", type=int, default=0, help="keep the EMA G every N steps in <out>/snapshots (0 = off)")
    tg.add_argument("--resume", action="store_true")

    eg = sub.add_parser("evaluate-gan", help="FID, intra-FID, accuracy, IS-style score of generators")
    eg.add_argument("generators", nargs="+", help="label=path/to/final.pt pairs")
    eg.add_argument("--evaluator", required=True, help="the classifier's model.pt")
    eg.add_argument("--samples", type=int, default=10000)
    eg.add_argument("--seed", type=int, default=2024)
    eg.add_argument("--json", help="write the metrics here")
    eg.add_argument("--threads", type=int, default=os.cpu_count() or 1)

    e = sub.add_parser("evaluate", help="PSNR/SSIM on the held-out test photos")
    e.add_argument("checkpoints", nargs="*", help="label=path/to/final.pt pairs")
    e.add_argument("--short-side", type=int, default=256)
    e.add_argument("--json", help="write the metrics here")
    e.add_argument("--figure", help="write a before/after PNG grid here")

    x = sub.add_parser("export", help="export ONNX + fixture + manifest")
    x.add_argument("checkpoint")
    x.add_argument("--out-dir", required=True)
    x.add_argument("--name", default="colorize-pono")
    x.add_argument("--version", default="1.0.0")
    x.add_argument("--metrics", help="metrics JSON from `evaluate`")
    x.add_argument("--command", help="the exact training command, for the manifest")
    x.add_argument("--loss-comparison", help="evaluate --json of the L1 vs L1+PatchGAN runs, for the manifest")
    x.add_argument("--loss-runs", nargs="*", default=[], help="label=run_dir pairs of those runs (their best val L1)")
    x.add_argument("--fixture-dir", help="where the parity fixture goes (default: <out-dir>/fixture)")

    args = p.parse_args(argv)
    if args.cmd == "data":
        from .data import photos
        photos.install()
        ps = photos.index()
        tr, va = photos.split(ps)
        print(json.dumps({"train": [vars(q) for q in tr], "validation": [vars(q) for q in va]}, indent=2))
        return 0
    if getattr(args, "device", "cpu") == "cuda":
        import torch
        if not torch.cuda.is_available():
            print("error: --device cuda but torch.cuda.is_available() is False", file=sys.stderr)
            return 2
    if args.cmd == "train":
        from .train_translator import train
        train(args)
        return 0
    if args.cmd == "train-inpaint":
        from .train_inpainter import train as train_inpaint
        train_inpaint(args)
        return 0
    if args.cmd == "train-classifier":
        from .train_classifier import train as train_classifier
        train_classifier(args)
        return 0
    if args.cmd == "train-gan":
        from .train_gan import train as train_gan
        train_gan(args)
        return 0
    if args.cmd == "evaluate-gan":
        from .evaluate_gan import main as evaluate_gan_main
        return evaluate_gan_main(args)
    if args.cmd == "evaluate":
        from .evaluate import main as evaluate_main
        return evaluate_main(args)
    if args.cmd == "export":
        from .export import main as export_main
        return export_main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
