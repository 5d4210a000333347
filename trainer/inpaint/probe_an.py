"""Why AN's rho stays near 0 in the inpainter (issue 30): a probe of a trained fill-refine AN checkpoint.

On fixed validation crops and masks (as ``inpaint train`` validates), with every other weight held:

* the scale of AN's two terms at its input, ``AN(x) = rho * RN(x) + x`` (eq. 6): std of ``x`` and of the
  regional-normalized ``RN(x)`` (beta = 1, alpha = 0 at initialisation: ~unit variance), so the share of the
  output that is regional normalization is ``|rho| std(RN) / std(x)``;
* the hole L1 with rho forced to each value of ``--rhos`` (is more regional normalization better or worse
  for the network as trained?);
* ``dL/drho`` at the checkpoint's rho (its sign is the direction Adam pushes rho).

Prints a table; ``--json`` writes it. Source: Wang et al. 2020, "Attentive Normalization for Conditional
Image Generation", eqs. 5-6.
"""
from __future__ import annotations

import json
from argparse import Namespace

import numpy as np
import torch

from ..data import photos
from .train import build_model, masks_for, parse_scales


def main(a: Namespace) -> int:
    """The ``inpaint probe-an`` verb: prints the probe of ``a.checkpoint``'s first AN layer on ``a.crops`` validation
    crops (``a.rhos``: the forced values); writes ``a.json``. Returns 1 for an IN model (no AN layer), else 0."""
    torch.set_num_threads(a.threads)
    ck = torch.load(a.checkpoint, map_location="cpu")
    args = ck["args"]
    net = build_model(args)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck.get("ema", ck["model"]).items()})
    net.eval()
    an = net.an_layers()
    if not an:
        print("no AN layer (an IN model)")
        return 1
    layer = an[0]
    _, val_set = photos.split(photos.index(photos.parse_collections(args.get("photos"))))
    scales = parse_scales(args.get("scales"))
    y = photos.PhotoCrops(val_set, crop=args["crop"], scales=scales, seed=12345).batch(a.crops).float().div(127.5).sub(1)
    m = masks_for(a.crops, args["crop"], np.random.default_rng(54321), True)
    seen = {}
    hook = layer.register_forward_hook(lambda mod, inp, out: seen.update(x=inp[0].detach()))

    def hole_l1() -> torch.Tensor:
        _, out = net(y, m)
        return ((out - y).abs() * m).sum() / (3 * m.sum())

    rho0 = float(layer.rho)
    with torch.no_grad():
        base = float(hole_l1())
        x = seen["x"]
        rn = layer.regional_norm(x, layer.semantic_layout(x))
    hook.remove()
    sx, srn = float(x.std()), float(rn.std())
    rows = []
    for r in [float(v) for v in a.rhos.split(",")]:
        with torch.no_grad():
            layer.rho.fill_(r)
            rows.append({"rho": r, "hole_l1": round(float(hole_l1()), 5)})
    with torch.no_grad():
        layer.rho.fill_(rho0)
    net.zero_grad()
    loss = hole_l1()
    loss.backward()
    grad = float(layer.rho.grad)
    out = {"checkpoint": a.checkpoint, "step": ck.get("step"), "rho": round(rho0, 5), "t_mean": round(float(layer.t.mean()), 4),
           "std_x": round(sx, 4), "std_rn": round(srn, 4), "rn_share": round(abs(rho0) * srn / max(sx, 1e-9), 5),
           "hole_l1": round(base, 5), "dL_drho": grad, "sweep": rows, "crops": a.crops}
    print(f"rho {rho0:.4f}  t {out['t_mean']:.3f}  std(x) {sx:.3f}  std(RN(x)) {srn:.3f}  -> RN share of AN's output "
          f"{out['rn_share']:.4f};  hole L1 {base:.4f};  dL/drho {grad:+.4g} (Adam moves rho {'down' if grad > 0 else 'up'})")
    for r in rows:
        print(f"  rho = {r['rho']:<6g} hole L1 {r['hole_l1']:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0
