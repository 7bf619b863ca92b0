"""Every file in `paper_figures/` says what made it and comes from a notebook of the manifest.

- each output of each manifest notebook names its model and the commit it was run from (CSV columns, the first line of a
  Markdown file, PNG/PDF metadata, a JSON `provenance` key), read back by `steerkit.reproduce.read_provenance`;
- no file in `paper_figures/` is outside the manifest's outputs (the hand-written index `README.md` and the run records
  in `_runs/` aside), and none is code.

Notebooks whose committed outputs predate provenance are listed in PENDING and expected to fail (strict: a rerun that
stamps them turns the test red until they leave the list)."""
import io
from pathlib import Path
import pytest
from steerkit.reproduce import load_manifest, read_provenance

ROOT = Path(__file__).resolve().parents[1]
FIG = ROOT/"paper_figures"
STAMPED = {".csv", ".md", ".png", ".pdf", ".json"}       # the kinds of file read_provenance reads
CODE = {".py", ".sh", ".ipynb", ".r", ".js"}
EXEMPT = {"README.md"}                                    # the index of paper_figures, written by hand
# full runs still to do with the stamping code (each hours on 2 cores); empty since T5/T6's rerun at c10f244
PENDING = set()

MANIFEST = load_manifest()


def _files(out: str) -> list:
    p = FIG/out
    return sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]


@pytest.mark.parametrize("entry", [pytest.param(e, id=e["name"], marks=[pytest.mark.xfail(strict=True, reason="outputs predate provenance")]
                                                if e["name"] in PENDING else []) for e in MANIFEST["notebooks"]])
def test_every_output_names_its_model_and_commit(entry):
    bad = []
    for out in entry["outputs"]:
        for f in _files(out):
            if not f.exists(): bad.append(f"{f.relative_to(FIG)} (missing)"); continue
            if f.suffix.lower() not in STAMPED: continue
            prov = read_provenance(f)
            if not (prov.get("model") and prov.get("commit")): bad.append(str(f.relative_to(FIG)))
    assert not bad, f"{entry['name']}: no model/commit recorded in {', '.join(bad)}: rerun it with `steerkit reproduce --only {entry['name']}`"


def _listed() -> set:
    return {f.resolve() for e in MANIFEST["notebooks"] for out in e["outputs"] for f in _files(out)}


def _unlisted() -> list:
    listed = _listed()
    return sorted(f.relative_to(FIG) for f in FIG.rglob("*") if f.is_file() and f.resolve() not in listed
                  and f.relative_to(FIG).parts[0] != "_runs" and f.name not in EXEMPT)


def test_no_strays_and_no_code():
    assert not _unlisted(), (f"files in paper_figures/ that no manifest notebook writes: {[str(f) for f in _unlisted()]}; "
                             "add them to a notebook's outputs or remove them")
    code = [str(f.relative_to(FIG)) for f in FIG.rglob("*") if f.suffix.lower() in CODE and f.relative_to(FIG).parts[0] != "_runs"]
    assert not code, f"code in paper_figures/: {code}"


def test_read_provenance_finds_nothing_in_an_unstamped_file(tmp_path):
    (tmp_path/"a.csv").write_text("x\n1\n"); (tmp_path/"a.md").write_text("# A table\n")
    assert read_provenance(tmp_path/"a.csv") == {} and read_provenance(tmp_path/"a.md") == {}


def test_committed_timings_are_the_records_times():
    """`_runs/timings.csv` says what the committed run records took (papermill's duration in each record): a run copied in
    from another checkout must not bring back an older notebook's row."""
    import nbformat, pandas as pd
    t = pd.read_csv(FIG/"_runs"/"timings.csv")
    recs = sorted(p.name for p in (FIG/"_runs").glob("*.ipynb"))
    assert sorted(t.notebook) == recs, f"timings.csv rows {sorted(t.notebook)} vs records {recs}"
    bad = [(r.notebook, r.wall_s, d) for r in t.itertuples()
           if abs(r.wall_s - (d := nbformat.read(FIG/"_runs"/r.notebook, 4).metadata["papermill"]["duration"])) > 5 + .01 * d]
    assert not bad, f"timings.csv disagrees with the records' durations (notebook, wall_s, record): {bad}"

def test_committed_profiles_are_the_records_profiles():
    """`_runs/profile.csv` and `_runs/stages.csv` are what `run_profile` and `stage_profile` read from the committed
    records (and their `.stages.json`): a record copied in without its profiles rewritten fails here."""
    import pandas as pd
    from steerkit.reproduce import run_profile, stage_profile
    runs = FIG/"_runs"
    for name, fn in (("profile.csv", run_profile), ("stages.csv", stage_profile)):
        got = fn(runs).reset_index(drop=True)
        pd.testing.assert_frame_equal(pd.read_csv(runs/name), pd.read_csv(io.StringIO(got.to_csv(index=False))),
                                      check_exact=False, rtol=1e-9, obj=name)
    st = pd.read_csv(runs/"stages.csv")
    staged = {p.name.removesuffix(".stages.json") + ".ipynb" for p in runs.glob("*.stages.json")}
    assert {"t1_main.ipynb", "f1_norms.ipynb", "f2_layers.ipynb"} <= staged
    assert "t1_main.ipynb" in set(st[st.stage == "generation"].notebook)     # T1's generation is measured, not unstaged
