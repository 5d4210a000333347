"""The trainer's command line: ``python3 -m trainer TASK VERB`` with --help at each level, and the old
flat names kept for one release as aliases that print the new form. (Each task's smoke test runs its
train + evaluate + export verbs through this CLI: tests/TASK/.)"""
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERBS = {"colorize": ["train", "train-hints", "evaluate-hints", "tune-hybrid", "export-hints", "evaluate", "curve", "export"], "inpaint": ["train", "evaluate", "probe-an", "curve", "export"],
         "upscale": ["train", "evaluate", "curve", "export"],
         "generate": ["train", "train-evaluator", "evaluate", "curve", "export"], "data": ["fetch"], "checkpoint": ["compact"], "onnx": ["optimize"],
         "explain": ["export", "fixture"]}


def trainer(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainer", *argv], cwd=REPO, capture_output=True, text=True, timeout=120)


def listed(help_text: str) -> list[str]:
    """The subcommand names argparse lists under 'positional arguments' (4-space indented name + help)."""
    block = help_text.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return re.findall(r"^    ([a-z][a-z-]*)\s", block, re.M)


def test_top_level_help_lists_the_tasks():
    r = trainer("--help")
    assert r.returncode == 0 and listed(r.stdout) == list(VERBS)


@pytest.mark.parametrize("task", list(VERBS))
def test_task_help_lists_its_verbs(task):
    r = trainer(task, "--help")
    assert r.returncode == 0 and listed(r.stdout) == VERBS[task]


def test_missing_verb_and_unknown_task_are_usage_errors():
    r = trainer("inpaint")
    assert r.returncode == 2 and "VERB" in r.stderr
    r = trainer("paint", "train")
    assert r.returncode == 2 and "invalid choice" in r.stderr


@pytest.mark.parametrize("old,new", [("train", "colorize train"), ("train-inpaint", "inpaint train"),
                                     ("train-gan", "generate train"), ("train-classifier", "generate train-evaluator"),
                                     ("evaluate", "colorize evaluate"), ("evaluate-gan", "generate evaluate"),
                                     ("export", "colorize export")])
def test_old_names_print_the_new_form_and_run_it(old, new):
    r = trainer(old, "--help")
    assert r.returncode == 0
    assert f"is now `python3 -m trainer {new}`" in r.stderr
    assert r.stdout.startswith(f"usage: python3 -m trainer {new} ")


def test_curve_from_a_log_and_a_curve_json(tmp_path):
    """`TASK curve` reads a training log's [train] lines or a curve.json and writes a PNG."""
    from trainer import curves
    log = tmp_path / "train.log"
    log.write_text("[data] x\n[train] step 250/4000 rec 0.1161 ortho 0.0000 val_l1_hole 0.2186 val_psnr 22.54dB (best 0.2187 @ 250) 3.4 img/s\n"
                   "[train] step 500/4000 rec 0.1000 ortho 0.0000 val_l1_hole 0.2100 val_psnr 22.60dB (best 0.2100 @ 500) 3.4 img/s\n")
    recs = curves.from_log(str(log))
    assert [r["step"] for r in recs] == [250, 500] and recs[0]["val_l1_hole"] == 0.2186 and recs[1]["val_psnr"] == 22.6
    run = tmp_path / "run"
    run.mkdir()
    (run / "curve.json").write_text('{"step": 1, "val_psnr": 19.0}\n{"step": 2, "val_psnr": 19.5}\n')
    r = trainer("inpaint", "curve", f"a={log}", f"b={run}", "--plot", str(tmp_path / "c.png"), "--keys", "val_psnr")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c.png").stat().st_size > 1000 and "b: 2 points" in r.stdout
