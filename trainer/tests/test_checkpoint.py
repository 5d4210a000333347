"""Compact checkpoints (trainer/checkpoint.py): smaller, and a resume from them restores float32 state
with Adam's tiny second moments intact."""
import torch

from trainer.checkpoint import compact


def test_compact_checkpoint_resumes_in_float32(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(256, 256)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(4, 256)).pow(2).mean().mul(1e-6).backward()  # tiny gradients: v ~ 1e-16, below float16
    opt.step()
    ema = {k: v.clone() for k, v in net.state_dict().items()}
    src, dst = tmp_path / "checkpoint.pt", tmp_path / "small.pt"
    torch.save({"model": net.state_dict(), "ema": ema, "opt": opt.state_dict(), "step": 7, "args": {"x": 1}}, src)
    before, after = compact(str(src), str(dst))
    assert after < 0.7 * before
    ck = torch.load(dst)
    assert ck["model"]["weight"].dtype == torch.float32 and ck["ema"]["weight"].dtype == torch.float16
    assert ck["opt"]["state"][0]["exp_avg_sq"].dtype == torch.bfloat16 and ck["step"] == 7
    net2 = torch.nn.Linear(256, 256)
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-3)
    net2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["opt"])
    v, v2 = opt.state_dict()["state"][0]["exp_avg_sq"], opt2.state_dict()["state"][0]["exp_avg_sq"]
    assert v2.dtype == torch.float32 and (v2 > 0).all() and torch.allclose(v2, v, rtol=1e-2)
    assert torch.equal(net2.weight, net.weight)
    best, best_small = tmp_path / "best.pt", tmp_path / "best_small.pt"
    torch.save({"model": net.state_dict(), "args": {}, "step": 3}, best)
    compact(str(best), str(best_small))
    assert torch.load(best_small)["model"]["weight"].dtype == torch.float16
