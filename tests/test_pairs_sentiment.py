"""Your own pairs on the embedded model, through the command line: `steerkit calibrate --pairs` with the kit's sentiment
pairs (128) and CAA, then `steerkit generate` on the 64 held-out neutral requests, steered and unsteered, scored by VADER.
The steered answers must be more positive, by a paired bootstrap interval that excludes zero. About 5 minutes on 2
cores, so it runs only with STEERKIT_SLOW=1 (`STEERKIT_SLOW=1 .venv/bin/pytest -q tests/test_pairs_sentiment.py -s`)."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

EXE = Path(sys.executable).with_name("steerkit")
PAIRS = Path(__file__).resolve().parents[1]/"steerkit"/"data"/"sentiment_pairs.jsonl"

@pytest.mark.skipif(not os.environ.get("STEERKIT_SLOW"), reason="slow (about 5 minutes): set STEERKIT_SLOW=1")
def test_caa_pairs_move_sentiment_toward_positive(tmp_path):
    from steerkit.pairs import neutral_split, sentiment
    from steerkit.metrics import bootstrap_ci
    run = lambda *a: subprocess.run([str(EXE), *map(str, a)], capture_output=True, text=True, timeout=1800)
    fz = tmp_path/"frozen"
    r = run("calibrate", "--model", "embedded", "--method", "caa", "--pairs", PAIRS, "--grid", "0,1,2,4,8", "--max-new-tokens", 40, "--out", fz)
    assert r.returncode == 0, r.stderr[-3000:]
    meta = json.loads((fz/"vectors.json").read_text())["meta"]
    print(r.stdout, json.dumps(meta["sweep"], indent=1))
    held = tmp_path/"held.txt"; held.write_text("\n".join(neutral_split()[1]) + "\n")
    out = {}
    for name, extra in (("caa", ["--calibration", fz]), ("none", [])):
        r = run("generate", "--model", "embedded", "--method", name, *extra, "--prompts", held, "--out", tmp_path/f"{name}.jsonl", "--max-new-tokens", 40)
        assert r.returncode == 0, r.stderr[-3000:]
        out[name] = [json.loads(l) for l in (tmp_path/f"{name}.jsonl").read_text().splitlines()]
    assert [x["prompt"] for x in out["caa"]] == [x["prompt"] for x in out["none"]] and len(out["caa"]) == 64
    s, u = sentiment([x["response"] for x in out["caa"]]), sentiment([x["response"] for x in out["none"]])
    d = bootstrap_ci(s, u)
    print(f"m = {meta['param']}: VADER steered {s.mean():+.3f}, unsteered {u.mean():+.3f}, difference {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]")
    assert d["lo"] > 0, d
