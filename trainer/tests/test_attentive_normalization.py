"""Attentive Normalization (Wang et al. 2020): IN as the one-entity case, identity at rho = 0,
deterministic inference and an ONNX graph without random ops, and the orthogonality loss (eq. 1)."""
import onnx
import torch

import pytest

from trainer.normalization import AttentiveNormalization, grid_positions, orthogonality_loss


def _x(seed=0, shape=(2, 8, 12, 10)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * 3 + 1


def test_single_entity_regional_norm_is_instance_norm_with_its_affine():
    torch.manual_seed(0)
    an = AttentiveNormalization(8, n=1)
    with torch.no_grad():
        an.beta.uniform_(0.5, 2.0)
        an.alpha.normal_()
    x = _x()
    layout = an.eval().semantic_layout(x)
    assert torch.allclose(layout, torch.ones_like(layout))
    expected = torch.nn.functional.instance_norm(x, eps=1e-5) * an.beta.view(1, 8, 1, 1) + an.alpha.view(1, 8, 1, 1)
    assert torch.allclose(an.regional_norm(x, layout), expected, atol=1e-4)


def test_rho_zero_is_identity_in_train_and_eval():
    an = AttentiveNormalization(8, n=16)
    x = _x(1)
    assert an.rho.item() == 0.0  # eq. 6 initialisation
    assert torch.equal(an.train()(x), x)
    assert torch.equal(an.eval()(x), x)


def test_layout_is_a_softmax_over_entities_and_regions_normalize_their_pixels():
    torch.manual_seed(2)
    an = AttentiveNormalization(8, n=4).train()
    x = _x(2)
    s = an.semantic_layout(x)
    assert s.shape == (2, 4, 12, 10)
    assert torch.allclose(s.sum(1), torch.ones(2, 12, 10), atol=1e-5)
    # With a hard layout (two halves), each half is normalized on its own statistics.
    hard = torch.zeros(2, 4, 12, 10)
    hard[:, 0, :6] = 1
    hard[:, 1, 6:] = 1
    y = an.regional_norm(x, hard)
    top, bottom = y[:, :, :6], y[:, :, 6:]
    assert torch.allclose(top.mean((2, 3)), torch.zeros(2, 8), atol=1e-4)
    assert torch.allclose(bottom.var((2, 3), unbiased=False), torch.ones(2, 8), atol=1e-3)


def test_self_sampling_is_random_in_training_and_off_at_inference():
    torch.manual_seed(3)
    an = AttentiveNormalization(8, n=16)
    with torch.no_grad():
        an.rho.fill_(1.0)
        an.t.fill_(5.0)  # make the self-sampling branch count
    x = _x(3)
    torch.manual_seed(10)
    a = an.train()(x)
    torch.manual_seed(11)
    b = an.train()(x)
    assert not torch.allclose(a, b)
    assert torch.equal(an.eval()(x), an.eval()(x))


@pytest.mark.parametrize("sampling", ["off", "grid"])
def test_exported_onnx_has_no_random_op(tmp_path, sampling):
    an = AttentiveNormalization(8, n=16, inference_sampling=sampling).eval()
    with torch.no_grad():
        an.rho.fill_(0.5)
    path = str(tmp_path / "an.onnx")
    torch.onnx.export(an, _x(4), path, opset_version=17, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}})
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert "Softmax" in ops
    assert ("MaxPool" in ops) == (sampling == "grid")  # the key branch exists in the graph only with grid
    assert not {op for op in ops if "Random" in op or op in ("Multinomial", "Bernoulli", "Dropout")}


def test_orthogonality_loss():
    an = AttentiveNormalization(16, n=4)
    assert orthogonality_loss(an).item() > 0
    with torch.no_grad():
        an.entities.weight.copy_(torch.eye(16)[:4].view(4, 16, 1, 1))
    assert orthogonality_loss(an, 1e-4).item() == 0.0


def test_cost_benchmark_runs_and_marks_oom(tmp_path):
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "trainer.bench_an", "--sizes", "16", "512", "--repeats", "1",
                          "--threads", "1", "--max-gib", "8", "--json", str(tmp_path / "b.json")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.load(open(tmp_path / "b.json"))
    assert rows["AN@16"]["status"] == "ok" and rows["SA@16"]["status"] == "ok" and rows["AN@16"]["ms"] > 0
    assert rows["SA@512"]["status"].startswith("OOM")
    assert "SA/AN time" in out.stdout


def test_grid_positions_are_evenly_spaced_and_cover_both_ends():
    assert grid_positions(49, 16).tolist() == [round(i * 48 / 15) for i in range(16)]
    idx = grid_positions(30, 7)
    assert idx[0] == 0 and idx[-1] == 29 and bool((idx[1:] > idx[:-1]).all())
    assert grid_positions(5, 1).tolist() == [0]


def test_grid_inference_sampling_is_the_training_formula_at_fixed_positions(monkeypatch):
    torch.manual_seed(0)
    an = AttentiveNormalization(8, n=4, inference_sampling="grid")
    with torch.no_grad():
        an.rho.fill_(0.7)
        an.t.fill_(0.4)
    x = _x(5)
    grid = an.eval()(x)
    assert torch.equal(grid, an(x))  # deterministic
    an.inference_sampling = "off"
    off = an(x)
    assert (grid - off).abs().max() > 1e-3  # the branch contributes with t = 0.4
    # training mode with torch.randint forced to the grid positions gives the same output
    p = ((x.shape[2] + 1) // 2) * ((x.shape[3] + 1) // 2)
    monkeypatch.setattr(torch, "randint", lambda high, size, device=None: grid_positions(high, size[0], device))
    train = an.train()(x)
    assert torch.allclose(train, grid, atol=1e-6)
    assert grid_positions(p, 4).max() < p
    with pytest.raises(ValueError, match="inference_sampling"):
        AttentiveNormalization(8, inference_sampling="random")
