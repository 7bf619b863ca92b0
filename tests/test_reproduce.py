"""Reproduction driver end to end through `steerkit reproduce` (in the test's process: the notebooks run in their own
kernels either way), on throwaway paper notebooks."""
import json, re, shutil
from pathlib import Path
import pandas as pd
import pytest
import torch
import fastcore.test as fct
from steerkit.reproduce import toy_paper, load_manifest, check_parameters, default_manifest
from steerkit.timing import cpu_name
from conftest import steerkit_here

REPO = Path(__file__).resolve().parents[1]

def cli(*args):
    "Run `steerkit reproduce ARGS` from the repository root; the CompletedProcess-like."
    return steerkit_here("reproduce", *args, cwd=REPO)

def test_quick_run_writes_outputs_records_and_timings(tmp_path):
    man, out = toy_paper(tmp_path/"paper"), tmp_path/"out"
    r = cli("--quick", "--manifest", man, "--out", out, "--model", "google/gemma-2-2b-it")
    fct.test_eq(r.returncode, 0)
    fct.test_eq((out/"one.txt").read_text(), "google/gemma-2-2b-it 2\n")   # quick set n=2, --model injected
    fct.test_eq((out/"two.csv").read_text(), "i\n0\n1\n")
    fct.test_eq(sorted(p.name for p in (out/"_runs").iterdir()),
                ["one.ipynb", "profile.csv", "stages.csv", "timings.csv", "two.ipynb"])
    prof = pd.read_csv(out/"_runs"/"profile.csv")                          # every executed cell with its time
    fct.test_eq(sorted(set(prof.notebook)), ["one.ipynb", "two.ipynb"]); assert (prof.wall_s >= 0).all()
    st = pd.read_csv(out/"_runs"/"stages.csv")                             # the toys call no stage: all unstaged
    fct.test_eq(set(st.stage), {"unstaged"})
    fct.test_close(st.groupby(["notebook", "cell"]).self_s.sum().values,
                   prof.set_index(["notebook", "cell"]).wall_s.values, eps=0.02)
    t = pd.read_csv(out/"_runs"/"timings.csv")
    fct.test_eq(list(t.notebook), ["one.ipynb", "two.ipynb"])
    fct.test_eq(list(t.status), ["ok", "ok"])
    assert (t.wall_s > 0).all()
    fct.test_eq(set(t.cpu.fillna("")), {cpu_name()})                        # the machine beside each time
    assert f"outputs in {out.resolve()}" in r.stdout

def test_quick_defaults_to_a_fresh_temporary_directory(tmp_path):
    man = toy_paper(tmp_path/"paper")
    r = cli("--quick", "--manifest", man, "--only", "two")
    fct.test_eq(r.returncode, 0)
    out = Path(re.search(r"outputs in (\S+)", r.stdout).group(1))
    try:
        assert out.name.startswith("steerkit-quick-"), out
        fct.test_eq(sorted(p.name for p in out.iterdir()), ["_runs", "two.csv"])   # --only: one.ipynb did not run
        assert not (tmp_path/"paper_figures").exists() and not (REPO/"paper_figures"/"two.csv").exists()
    finally: shutil.rmtree(out)

def test_failing_notebook_exits_2_naming_notebook_and_cell(tmp_path):
    man, out = toy_paper(tmp_path/"paper", fail=True), tmp_path/"out"
    r = cli("--quick", "--manifest", man, "--out", out)
    fct.test_eq(r.returncode, 2)
    assert "two.ipynb failed in cell 3" in r.stderr and "RuntimeError: toy failure in cell 3" in r.stderr, r.stderr
    assert str(out.resolve()/"_runs"/"two.ipynb") in r.stderr
    fct.test_eq((out/"one.txt").read_text(), "embedded 2\n")                      # the earlier notebook's output stays
    fct.test_eq(list(pd.read_csv(out/"_runs"/"timings.csv").status), ["ok", "failed"])

def test_unknown_parameter_exits_2_before_running(tmp_path):
    man, out = toy_paper(tmp_path/"paper"), tmp_path/"out"
    raw = json.loads(man.read_text()); raw["notebooks"][1]["parameter_sets"]["full"]["angle_stp"] = 10
    man.write_text(json.dumps(raw))
    r = cli("--manifest", man, "--out", out)
    fct.test_eq(r.returncode, 2)
    assert "two.ipynb: parameter 'angle_stp' of the 'full' set is not assigned" in r.stderr, r.stderr
    assert not out.exists()

def test_missing_output_exits_2_listing_it(tmp_path):
    man, out = toy_paper(tmp_path/"paper"), tmp_path/"out"
    raw = json.loads(man.read_text()); raw["notebooks"][0]["outputs"].append("f1_norm_ratio.png")
    man.write_text(json.dumps(raw))
    r = cli("--quick", "--manifest", man, "--out", out)
    fct.test_eq(r.returncode, 2)
    assert "1 expected output(s) missing or empty" in r.stderr and "one.ipynb -> f1_norm_ratio.png (missing)" in r.stderr, r.stderr

def test_jobs_runs_notebooks_side_by_side_and_the_alone_one_by_itself(tmp_path, monkeypatch):
    "`--jobs 2`: the two toy notebooks at once with one thread each (of 2), a third marked `alone` after them with 2."
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    man, out = toy_paper(tmp_path/"paper"), tmp_path/"out"
    raw = json.loads(man.read_text())
    shutil.copy(man.parent/"one.ipynb", man.parent/"three.ipynb")
    raw["notebooks"].append(dict(notebook="three.ipynb", parameter_sets={"full": {}, "quick": {}}, outputs=["one.txt"], alone=True))
    raw["notebooks"][0]["outputs"] = []                      # three.ipynb writes one.txt again (each output declared once)
    man.write_text(json.dumps(raw))
    r = cli("--quick", "--manifest", man, "--out", out, "--jobs", "2")
    fct.test_eq(r.returncode, 0)
    t = pd.read_csv(out/"_runs"/"timings.csv").set_index("notebook")
    fct.test_eq(t.threads.to_dict(), {"one.ipynb": 1, "two.ipynb": 1, "three.ipynb": 2})
    fct.test_eq(list(t.status), ["ok"] * 3)
    assert t.started_s["three.ipynb"] >= (t.started_s + t.wall_s)[["one.ipynb", "two.ipynb"]].max(), t   # alone: after both
    wall = re.search(r"3 notebook\(s\) in ([0-9.]+) s \(([0-9.]+) s of notebook time\)", r.stdout)
    assert wall and float(wall.group(1)) == pytest.approx((t.started_s + t.wall_s).max(), abs=0.1), r.stdout
    r = cli("--quick", "--manifest", man, "--out", out, "--jobs", "0")
    fct.test_eq(r.returncode, 2); assert "jobs must be a whole number" in r.stderr, r.stderr

def test_repo_manifest_runs_the_benchmarks_alone_and_t5_after_t1():
    "The committed manifest: under `--jobs`, the notebooks that time things run by themselves; T5/T6 reuses T1's answers."
    from steerkit.cli import BENCH_NOTEBOOKS
    m = load_manifest(REPO/"nbs"/"paper"/"manifest.json")
    fct.test_eq(sorted(e["name"] for e in m["notebooks"] if e["alone"]), sorted(BENCH_NOTEBOOKS))
    fct.test_eq({e["name"]: e["after"] for e in m["notebooks"] if e["after"]}, {"t5_t6_ablations": ["t1_main"]})

def test_repo_manifest_fits_the_paper_notebooks():
    "Cheap (no execution): the committed manifest is valid and every parameter it sets exists in its notebook."
    m = load_manifest(REPO/"nbs"/"paper"/"manifest.json")
    check_parameters(m)
    fct.test_eq(default_manifest(), (REPO/"nbs"/"paper"/"manifest.json").resolve())

@pytest.mark.quick_outputs
def test_quick_reproduction_produced_every_output(tmp_path):
    """Every output the manifest declares exists and is non-empty after the quick reproduction. `make test` runs the
    quick reproduction first and exports STEERKIT_QUICK_OUT; run alone, this test runs it itself."""
    import os
    from steerkit.reproduce import reproduce
    m = load_manifest(REPO/"nbs"/"paper"/"manifest.json")
    out = Path(os.environ.get("STEERKIT_QUICK_OUT") or tmp_path/"quick")
    if not (out/"_runs"/"timings.csv").exists(): reproduce("quick", out_dir=out, progress=False)
    filled = lambda p: p.is_file() and p.stat().st_size > 0 or p.is_dir() and any(p.iterdir())     # an output may be a folder (cli_demo/)
    missing = [f"{e['name']} -> {o}" for e in m["notebooks"] for o in e["outputs"] if not filled(out/o)]
    fct.test_eq(missing, [])
    t = pd.read_csv(out/"_runs"/"timings.csv")
    fct.test_eq(sorted(t.notebook), sorted(Path(e["notebook"]).name for e in m["notebooks"]))
    assert (t.status == "ok").all(), t

def _quick_out(tmp_path):
    import os
    from steerkit.reproduce import reproduce
    out = Path(os.environ.get("STEERKIT_QUICK_OUT") or tmp_path/"quick")
    if not (out/"_runs"/"timings.csv").exists(): reproduce("quick", out_dir=out, progress=False)
    return out

@pytest.mark.quick_outputs
def test_quick_run_profiles_its_stages(tmp_path):
    """The quick run's `_runs/stages.csv`: the kernel of each paper notebook wrote its stages, attributed to the cells
    that ran them (T1 generates and captures activations in its cells), and every cell's stages and `unstaged` add up
    to its wall time in `profile.csv`."""
    out = _quick_out(tmp_path)
    st, prof = pd.read_csv(out/"_runs"/"stages.csv"), pd.read_csv(out/"_runs"/"profile.csv")
    t1 = st[st.notebook == "t1_main.ipynb"]
    assert {"generation", "activations"} <= set(t1.stage), t1
    assert (t1[t1.stage == "generation"].calls > 0).all() and (st.self_s >= 0).all()
    fct.test_eq(set(map(tuple, st[["notebook", "cell"]].values)), set(map(tuple, prof[["notebook", "cell"]].values)))
    tot = st.groupby(["notebook", "cell"]).self_s.sum()
    wall = prof.set_index(["notebook", "cell"]).wall_s.reindex(tot.index)
    assert ((tot - wall).abs() <= 0.05 + 0.01 * wall).all(), pd.concat([tot, wall], axis=1)[(tot - wall).abs() > 0.05]

@pytest.mark.quick_outputs
def test_quick_benchmarks_have_their_structure(tmp_path):
    "The benchmarks' quick run (tiny settings: it checks structure, never a timing): every method measured, ratios to unsteered."
    from steerkit.methods import method_names
    out = _quick_out(tmp_path)
    t = pd.read_csv(out/"b2_throughput.csv")
    fct.test_eq(set(t.method), {"none", *method_names()})
    from steerkit.reproduce import PROV_COLUMNS
    fct.test_eq(list(t.columns), ["method", "batch", "tok_per_s", "ratio", "device", "dtype", *PROV_COLUMNS])     # the table, then what made it
    fct.test_eq({(d, x) for d, x in zip(t.device, t.dtype)}, {("cuda:0", "bfloat16") if torch.cuda.is_available() else ("cpu", "float32")})
    fct.test_close(t[t.method == "none"].ratio.values, [1.0] * t.batch.nunique())
    assert (t.tok_per_s > 0).all()
    md = (out/"b2_performance.md").read_text()
    for part in ("steering-vectors", "greedy tokens identical: True", "Batched angle sweep", "Capture", "Peak resident memory"): assert part in md, part
    s = pd.read_csv(out/"b1_serve.csv")
    assert {"clients", "unsteered tok/s", "ss tok/s", "ss / unsteered (tok/s)", "device", "dtype"} <= set(s.columns)
    assert (s["ss tok/s"] > 0).all()

@pytest.mark.quick_outputs
def test_quick_methods_comparison_has_its_controls(tmp_path):
    """T8's quick run: every registered A/B method in the table, AUSteer's three selections (momentum, random, whole block)
    for every k, and SADI's two rules for every kind and K at every delta, effects relative to the unsteered score."""
    out = _quick_out(tmp_path)
    T = pd.read_csv(out/"t8_methods.csv")
    fct.test_eq(sorted(set(T.method)), ["austeer", "caa", "none", "sadi", "sadi-fixed"])
    A = pd.read_csv(out/"t8_austeer.csv")
    fct.test_eq(set(A.selection), {"momentum", "random", "whole block"})
    mom, rnd = (A[A.selection == s].set_index(["behaviour", "k"]) for s in ("momentum", "random"))
    fct.test_eq(sorted(mom.index), sorted(rnd.index))
    fct.test_eq((mom.units == rnd.units).all(), True)                       # the control steers as many units
    assert (A[A.selection == "whole block"].units > A.k.max()).all()
    S = pd.read_csv(out/"t8_sadi.csv")
    fct.test_eq(set(S.kind), {"head", "neuron", "hidden"})
    n = S.groupby(["behaviour", "kind", "K", "delta"]).rule.nunique()
    fct.test_eq(set(n), {2})
    zero = S[S.delta == 0]                                                 # delta = 0 is the unsteered model, for both rules
    assert (zero.effect.abs() < 1e-3).all(), zero

@pytest.mark.quick_outputs
def test_quick_behaviour_benchmark_has_its_structure(tmp_path):
    """T10's quick run (tiny settings: structure only): every behaviour with the unsteered row and every method of the quick
    set, held-out effects inside their bootstrap intervals, the unsteered effect 0, the refusal rows with intervals, and
    the report with its verdicts."""
    out = _quick_out(tmp_path)
    T = pd.read_csv(out/"t10_behaviours.csv")
    fct.test_eq(set(T.behaviour), {"sentiment +", "sentiment -", "topic: ocean"})
    for b, g in T.groupby("behaviour"):
        assert {"none", "ss", "caa", "austeer", "sadi", "sadi-fixed", "saas"} <= set(g.method), (b, set(g.method))
        f = g[~g.setting.astype(str).str.startswith("not fitted")]
        assert (f.effect_lo <= f.effect + 1e-9).all() and (f.effect <= f.effect_hi + 1e-9).all(), f
        fct.test_close(float(g[g.method == "none"].effect.iloc[0]), 0.0, eps=1e-12)
        assert (f[f.method != "none"].steered_dims > 0).all()
    C = pd.read_csv(out/"t10_curves.csv")
    assert {"behaviour", "method", "value", "effect", "coherent", "violation"} <= set(C.columns)
    R = pd.read_csv(out/"t10_refusal.csv")
    assert "none" in set(R.method) and {"compliance_lo", "compliance_hi", "effect_lo", "effect_hi"} <= set(R.columns)
    S = pd.read_csv(out/"t10_stability.csv")
    assert {"method", "sample"} <= set(S.columns) and S.method.nunique() >= 2
    md = (out/"t10_behaviours.md").read_text()
    for part in ("## sentiment +", "## refusal on the organism", "## Stability", "## Paper claims"): assert part in md, part
