"""The PONO-DMS parity fixture of ``test/fixtures/pono-dms/`` (issue 45): a small seeded random upscaler with
multi-channel PONO-DMS (nf 8), exported to ONNX, with one input and PyTorch's output. The Node test
``test/parity.test.ts`` runs the ONNX file in onnxruntime-node and compares (max abs ≤ 1e-4); the pytest
``test_dms_fixture_is_pytorch`` rebuilds the same network from its seed and checks the committed output.

    /usr/bin/python3 -m trainer.tests.upscale.dms_fixture     (rewrites test/fixtures/pono-dms/)
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch

from trainer.export import export_onnx
from trainer.upscale.model import Upscaler

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DIR = os.path.join(REPO, "test", "fixtures", "pono-dms")


def network() -> Upscaler:
    """The fixture's network: PONO-DMS multi-channel, 1 conv 3x3, nf 8; every weight N(0, 0.1) from seed 45."""
    torch.manual_seed(45)
    net = Upscaler(nf=8, n_mid=1, n_lr=1, shortcut="pono_dms", dms_multi=True).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    return net


def example() -> torch.Tensor:
    """1 x 3 x 16 x 20 float32 in [-1, 1] from seed 46 (H != W: the dynamic axes are exercised)."""
    g = torch.Generator().manual_seed(46)
    return torch.rand(1, 3, 16, 20, generator=g) * 2 - 1


def main() -> None:
    os.makedirs(DIR, exist_ok=True)
    net, x = network(), example()
    with torch.no_grad():
        y = net(x)
    export_onnx(net, os.path.join(DIR, "model.onnx"), (torch.zeros(1, 3, 32, 32),), ("image",), ("image_out",),
                {"image": {0: "batch", 2: "height", 3: "width"}, "image_out": {0: "batch", 2: "h4", 3: "w4"}})
    x.numpy().astype("<f4").tofile(os.path.join(DIR, "input.f32"))
    y.numpy().astype("<f4").tofile(os.path.join(DIR, "output.f32"))
    json.dump({"model": "model.onnx", "input": {"name": "image", "dims": list(x.shape), "file": "input.f32"},
               "output": {"name": "image_out", "dims": list(y.shape), "file": "output.f32"}, "tolerance_max_abs": 1e-4,
               "made_by": "/usr/bin/python3 -m trainer.tests.upscale.dms_fixture"}, open(os.path.join(DIR, "fixture.json"), "w"), indent=2)
    print(f"[fixture] {DIR}: {tuple(x.shape)} -> {tuple(y.shape)}")


if __name__ == "__main__":
    main()
