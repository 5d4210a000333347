"""trainer/graph.py: the serving-speed rewrites compute the same function as the exported graph.

There is no onnxruntime for Python on Debian, so the rewritten subgraphs are evaluated here with PyTorch ops of
the same semantics, on the initializers the rewrite wrote (edge Pad = replicate pad, grouped Conv = conv2d with
groups, DepthToSpace CRD = pixel_shuffle, ReduceMax/Exp/Slice/Div); the Node tests run the rewritten shipped
models in onnxruntime against their PyTorch fixtures (test/parity.test.ts)."""
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import numpy_helper

from trainer.export import export_onnx
from trainer.graph import (BICUBIC_AS_CONV, SOFTMAX_EXPECTATION, bicubic_resize_as_conv, cubic_phase_taps,
                           fuse_softmax_expectation, rewrite)


class Head(torch.nn.Module):
    """Softmax over Q bins (dim 1) then a 1 x 1 conv to K outputs: the colorizers' annealed-mean head."""

    def __init__(self, q: int = 7, k: int = 2, bias: bool = False) -> None:
        super().__init__()
        self.pre = torch.nn.Conv2d(1, q, 3, padding=1)
        self.mean = torch.nn.Conv2d(q, k, 1, bias=bias)

    def forward(self, x):
        return self.mean(torch.softmax(self.pre(x) / 0.38, dim=1))


class Up(torch.nn.Module):
    """A bicubic x4 residual, as the upscaler's."""

    def forward(self, x):
        up = F.interpolate(x, scale_factor=4.0, mode="bicubic", align_corners=False)
        return torch.tanh(F.pixel_shuffle(x.repeat(1, 16, 1, 1), 4)) + up


def _inits(model) -> dict:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_cubic_phase_taps_sum_to_one_and_match_torch():
    for s in (2, 3, 4):
        taps = cubic_phase_taps(s)
        assert taps.shape == (s, 5) and np.allclose(taps.sum(1), 1.0)
    # a 1-D bicubic upsampling through the taps equals PyTorch's on a random row (edge-clamped borders)
    x = torch.randn(1, 1, 1, 9, dtype=torch.float64)
    ref = F.interpolate(x.expand(1, 1, 4, 9), size=(4, 36), mode="bicubic", align_corners=False)[0, 0, 0]
    padded = F.pad(x[0, 0], (2, 2), mode="replicate")[0]
    taps = torch.from_numpy(cubic_phase_taps(4))
    out = torch.stack([torch.stack([(padded[j:j + 5] * taps[r]).sum() for r in range(4)]) for j in range(9)]).reshape(-1)
    assert torch.allclose(out, ref, atol=1e-12)
    with pytest.raises(ValueError):
        cubic_phase_taps(0)


@pytest.mark.parametrize("bias", [False, True])
def test_softmax_expectation_rewrite_is_the_same_function(tmp_path, bias):
    torch.manual_seed(0)
    head = Head(bias=bias).eval()
    path = str(tmp_path / "head.onnx")
    torch.onnx.export(head, (torch.zeros(1, 1, 8, 8),), path, opset_version=17, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}, "y": {0: "b", 2: "h", 3: "w"}})
    model = onnx.load(path)
    assert rewrite(onnx.load(path)) == [SOFTMAX_EXPECTATION]
    assert fuse_softmax_expectation(model) == 1
    ops = [n.op_type for n in model.graph.node]
    assert "Softmax" not in ops and {"ReduceMax", "Exp", "Div"} <= set(ops)
    assert ("Add" in ops) == bias
    conv = [n for n in model.graph.node if n.name.endswith("expectation/Conv")][0]
    w = _inits(model)[conv.input[1]]
    assert w.shape == (3, 7, 1, 1) and np.all(w[2] == 1.0)
    # evaluate the rewritten subgraph with the written weights, on logits large enough that a plain exp overflows
    with torch.no_grad():
        x = torch.randn(2, 1, 6, 5) * 40
        z = head.pre(x) / 0.38
        e = torch.exp(z - z.amax(1, keepdim=True))
        y = F.conv2d(e, torch.from_numpy(w.copy()))
        out = y[:, :2] / y[:, 2:3]
        if bias:
            out = out + head.mean.bias.view(1, -1, 1, 1)
        assert torch.isfinite(out).all()
        assert torch.allclose(out, head(x), atol=1e-5)
    # a second pass finds nothing left to rewrite
    assert fuse_softmax_expectation(model) == 0


def test_bicubic_resize_rewrite_is_the_same_function(tmp_path):
    path = str(tmp_path / "up.onnx")
    assert export_onnx(Up().eval(), path, (torch.zeros(1, 3, 8, 8),), ("image",), ("image_out",)) == [BICUBIC_AS_CONV]
    model = onnx.load(path)   # export_onnx applied the rewrites already
    ops = [n.op_type for n in model.graph.node]
    assert "Resize" not in ops and {"Pad", "Conv", "DepthToSpace"} <= set(ops)
    conv = [n for n in model.graph.node if n.op_type == "Conv"][0]
    w = torch.from_numpy(_inits(model)[conv.input[1]].copy())
    assert tuple(w.shape) == (48, 1, 5, 5)
    d2s = [n for n in model.graph.node if n.op_type == "DepthToSpace"][0]
    assert {a.name: onnx.helper.get_attribute_value(a) for a in d2s.attribute} == {"blocksize": 4, "mode": b"CRD"}
    x = torch.randn(2, 3, 7, 10)
    got = F.pixel_shuffle(F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), w, groups=3), 4)   # CRD order
    assert torch.allclose(got, F.interpolate(x, scale_factor=4.0, mode="bicubic", align_corners=False), atol=1e-5)


def test_rewrite_leaves_other_graphs_alone(tmp_path):
    path = str(tmp_path / "plain.onnx")
    torch.onnx.export(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Softmax(dim=-1)).eval(),
                      (torch.zeros(1, 1, 8, 8),), path, opset_version=17)
    model = onnx.load(path)
    before = model.SerializeToString()
    assert rewrite(model) == [] and bicubic_resize_as_conv(model) == 0
    assert model.SerializeToString() == before
