"""inpaint: the two-stage inpainter with Attentive Normalization (``inpaint`` task; model ``inpaint-an``).

  train     train the inpainter (``--norm an``, or ``--norm in`` for the same-budget ablation)
  evaluate  PSNR / SSIM / MAE on the test photos with their committed masks vs OpenCV Telea;
            ``--split val --sweep`` chooses the served working side on the validation photos
  curve     validation curves of runs as a small PNG
  export    ONNX (image + mask -> composited image) + parity fixture + manifest + NOTICE
"""
from __future__ import annotations

import os

from .. import cli, registry


registry.add_served(lambda m: m["task"] == "inpaint", "trainer.inpaint.export:load_served")
registry.add("int8_sample", lambda m: m["task"] == "inpaint", "trainer.inpaint.export:int8_sample")
registry.add("int8_score", lambda m: m["task"] == "inpaint", "trainer.inpaint.export:int8_score")


def register(sub) -> None:
    """Add the inpaint verbs to ``sub`` (argparse subparsers)."""
    t = cli.verb(sub, "train", "trainer.inpaint.train:train", "train the inpainter (AN or IN in the refine stage)")
    cli.add_run_folder(t, log_every=100, ckpt_every=250)
    cli.add_runtime(t)
    t.add_argument("--arch", choices=["fill-refine", "two-stage"], default="fill-refine",
                   help="fill-refine: push-pull fill + full-resolution U-Net with AN (1.0.0); two-stage: 0.x")
    t.add_argument("--photos", default="all",
                   help="photo collections, comma-separated or 'all'; inpaint-an 0.x used wallpapers,opencv")
    t.add_argument("--norm", choices=["an", "in"], default="an")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--crop", type=int, default=64)
    t.add_argument("--width", type=int, default=24)
    t.add_argument("--entities", type=int, default=16, help="AN's n")
    t.add_argument("--lambda-o", type=float, default=1e-4, help="orthogonality loss weight (eq. 1)")
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--ema", type=float, default=0.999)
    t.add_argument("--val-crops", type=int, default=64)
    t.add_argument("--init", help="fine-tune: start from this checkpoint.pt's weights (fresh optimizer and schedule)")
    t.add_argument("--adv-weight", type=float, default=0.0,
                   help="lambda_adv: PatchGAN (LSGAN) term on the composited output (paper section 5.1: 1e-3; 0 = L1 only)")
    t.add_argument("--critic", choices=["patchgan", "sn-luma"], default="patchgan",
                   help="with --adv-weight: patchgan = LSGAN PatchGAN on RGB (0.x); sn-luma = SN-PatchGAN, hinge loss, "
                        "on cat(mask, luma), hole patches only (issue 30; trainer.inpaint.adversarial)")
    t.add_argument("--fm-weight", type=float, default=0.0, help="sn-luma: discriminator feature-matching weight")
    t.add_argument("--d-lr-mult", type=float, default=1.0, help="sn-luma: the critic's learning rate / --lr")
    t.add_argument("--ndf", type=int, default=24, help="sn-luma: the critic's base width")
    t.add_argument("--chroma-lowpass", type=int, default=0, choices=[0, 2, 4, 8],
                   help="fill-refine: low-pass the correction's chroma over k x k blocks (texture only in luma; 0 = off)")
    t.add_argument("--object-masks", type=float, default=0.0,
                   help="share of training and validation masks that are object silhouettes (tuxpaint-stamps-default)")
    t.add_argument("--scales", default=None,
                   help="short sides (px) of the training/validation photo pyramid, comma-separated (default "
                        "trainer.data.photos.SCALES: 160,256,384,512); e.g. 128,144,160 "
                        "to train at the scale the service inpaints at (whole photo shrunk to 160 px)")

    e = cli.verb(sub, "evaluate", "trainer.inpaint.evaluate:main",
                 "PSNR/SSIM/MAE vs Telea on the test photos (or --split val --sweep)")
    e.add_argument("checkpoints", nargs="*", help="label=path/to/best.pt pairs")
    e.add_argument("--make-masks", action="store_true", help="(re)write trainer/inpaint/eval_masks (seeds 2024, 2025+)")
    e.add_argument("--json", help="write the metrics here")
    e.add_argument("--working-side", type=int, default=0, help="inpaint at this longer side and paste back (0 = native)")
    e.add_argument("--figure", help="write a comparison grid PNG (rows: photos; columns: input, methods, original)")
    e.add_argument("--figure-photos", default="astronaut,coffee,chelsea")
    e.add_argument("--split", choices=("test", "val"), default="test")
    e.add_argument("--dump", help="write each case's <photo>.png and <photo>.mask.png (white = hole) here, then exit")
    e.add_argument("--outputs", action="append", default=[], help="label=DIR: score DIR/<photo>.out.png files")
    e.add_argument("--flip-tta", action="store_true", help="every checkpoint: average with its mirrored-input result")
    e.add_argument("--texture", action="append", default=[],
                   help="label=path/to/checkpoint: also score this checkpoint followed by the texture transfer (as --texture exports it)")
    e.add_argument("--sweep", help="comma-separated working sides (0 = native): print mean PSNR per side and method")
    e.add_argument("--masks", choices=["legacy", "box", "stroke", "mixed", "object", "all"], default="legacy",
                   help="legacy: 10-50 %% masks at short side 256 (issue 3); box/stroke/mixed: user-like masks on photos "
                        "at longer side 384 (issue 15); object: tuxpaint silhouettes (issue 30); all: one table each")
    e.add_argument("--timing", action="store_true", help="time Telea, Navier-Stokes and the checkpoints at 256/512/1024 px")
    e.add_argument("--repeats", type=int, default=3, help="--timing: runs per size (median)")
    e.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads")

    pr = cli.verb(sub, "probe-an", "trainer.inpaint.probe_an:main", "why AN's rho stays small: term scales, loss vs rho, dL/drho")
    pr.add_argument("checkpoint")
    pr.add_argument("--crops", type=int, default=32)
    pr.add_argument("--rhos", default="0,0.01,0.05,0.1,0.2,0.5,1")
    pr.add_argument("--threads", type=int, default=1)
    pr.add_argument("--json")

    cli.add_curve(sub, "rec,val_l1_hole,val_psnr,val_detail")

    x = cli.verb(sub, "export", "trainer.inpaint.export:main", "export ONNX (image + mask) + fixture + manifest")
    cli.add_export(x, "inpaint-an")
    x.add_argument("--metrics", help="`inpaint evaluate --json` at native resolution")
    x.add_argument("--working-max-side", type=int, default=512, help="serving.working_max_side (choose it on validation photos)")
    x.add_argument("--flip-tta", action="store_true", help="bake horizontal-flip test-time averaging into the graph")
    x.add_argument("--texture", action="store_true", help="append the texture transfer (trainer/inpaint/texture.py) to the graph")
    x.add_argument("--metrics-served", help="`inpaint evaluate --json` at the served working side")
