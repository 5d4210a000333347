"""trainer/export.py: manifests are strict JSON (a per-photo metric with nothing to measure is NaN in Python,
which Node's JSON.parse rejects: it must be written as null)."""
import json
import math

from trainer.export import finite_json, write_manifest


def test_non_finite_numbers_become_null_and_the_rest_is_kept(tmp_path):
    manifest = {"name": "m", "metrics": {"per_photo": {"a": {"hue": float("nan"), "psnr": 20.5}, "b": {"hue": float("inf")}},
                                         "rows": [1.0, float("-inf"), 2], "ok": True}}
    assert finite_json(manifest)["metrics"]["rows"] == [1.0, None, 2]
    write_manifest(str(tmp_path), manifest)
    text = (tmp_path / "manifest.json").read_text()
    assert "NaN" not in text and "Infinity" not in text and text.endswith("\n")
    back = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert back["metrics"]["per_photo"] == {"a": {"hue": None, "psnr": 20.5}, "b": {"hue": None}}
    assert back["metrics"]["ok"] is True and math.isclose(back["metrics"]["rows"][0], 1.0)
