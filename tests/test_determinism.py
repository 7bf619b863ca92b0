"""Determinism (issue 12): two runs of the quick reproduction give identical tables.

The cheap quick paper notebooks that write tables (`RERUN`: F1 norm checks, F2 layer statistics, T1/T2 main comparison
with its generated rows) run again with `steerkit reproduce --quick --only ...` into a temporary directory, with a fresh,
empty kit cache (`$STEERKIT_CACHE`; only the converted embedded model and the merged organism are linked in, so nothing
generated before is reused), and every .csv, .md and .json table they declare in the manifest is compared with the one the
quick reproduction wrote.
Only wall times are ignored (`TIMING`), and F1's worst in-plane angle errors (`ROUNDING_ROW`) are compared by their
verdicts: such an error is itself a rounding error (its bound is per row, from the token's in-plane norm), so two
planes equal to rounding give different worst errors (measured: 3.7e-4 vs 7.3e-4 deg in fp32, 11.0 vs 10.x deg in bf16)
while both stay within their bounds. Every other value must be equal: text exactly (responses, settings, layers,
counts), numbers within the kit's `rtol()` relative to max(|a|, |b|, 1) (in a Markdown table also within one unit of
the last printed digit). That tolerance is the project's rule for two computations that differ only by float rounding:
a row the kit cache had generated in another batch, or with code that rounds differently, differs by ~1e-6 relative
(measured: self_ppl 2e-6, tie_margin 9e-7 absolute); a changed response, setting or count differs by far more.

`make test` runs the quick reproduction and, beside it, the second run (`second_run`), and exports STEERKIT_QUICK_OUT and
STEERKIT_QUICK_AGAIN; run alone, this test first runs the `RERUN` notebooks of the quick reproduction itself (with the
usual kit cache), as tests/test_reproduce.py does, then the second run.
Cost: one quick run of the three notebooks (t1_main most of it), a few minutes on 2 cores."""
import json, math, os, re, shutil
from decimal import Decimal, InvalidOperation
from pathlib import Path
from unittest.mock import patch
import pandas as pd
import pytest
from steerkit.reproduce import reproduce, load_manifest, PROV_COLUMNS
from steerkit.models import rtol

REPO = Path(__file__).resolve().parents[1]
RERUN = ("f1_norms", "f2_layers", "t1_main")     # quick cost on 2 cores: see paper_figures/_runs and the README
TIMING = ("sweep_s", "wall_s")                   # wall-clock seconds: t1_main/t5/t6 'sweep_s' column, t1_run.json 'wall_s'
RUN = tuple(PROV_COLUMNS) + ("provenance",)      # what made a file (model, commit, command): not a result
TABLES = (".csv", ".md", ".json")
RTOL = rtol()                                    # sqrt(float32 eps) = 3.5e-4
NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)")   # a number inside a text cell ("b1.b2 = -1.4e-08")
ROUNDING_ROW = "max angle error (deg)"           # f1_norm_checks: a row whose measurement is a rounding error


def _verdicts(cells) -> list:
    "What must not change in a rounding-error row: its yes/no cells and its verdict's words before ';' or ':'."
    return [c for c in cells if c in ("yes", "no")] + [re.split("[;:]", str(cells[-1]))[0]]


def _num(s):
    "`s` as a float if it reads as one, else None."
    try: return float(s)
    except (TypeError, ValueError): return None

def _ulp(s) -> float:
    "One unit of the last digit of a printed decimal number ('0.250' -> 0.001), 0 for an integer or a non-string."
    if not isinstance(s, str) or not any(c in s for c in ".eE"): return 0.
    try: return 10. ** Decimal(s.strip()).as_tuple().exponent
    except (InvalidOperation, TypeError): return 0.

def _same(a, b, printed=False) -> bool:
    "Equal text, or numbers within RTOL x max(|a|, |b|, 1) (`printed`: or one unit of the last printed digit); NaN equals NaN."
    x, y = _num(a), _num(b)
    if x is None or y is None:                             # text: equal words, and numbers in it by the same rule
        u, v = NUMBER.split(str(a)), NUMBER.split(str(b))
        return len(u) == len(v) and all(_same(p, q, printed) if k % 2 else p == q for k, (p, q) in enumerate(zip(u, v)))
    if math.isnan(x) or math.isnan(y): return math.isnan(x) and math.isnan(y)
    tol = RTOL * max(abs(x), abs(y), 1.)
    if printed: tol = max(tol, _ulp(a), _ulp(b)) * (1 + 1e-9)
    return abs(x - y) <= tol

def _csv_diffs(a: Path, b: Path) -> list:
    x, y = (pd.read_csv(p, keep_default_na=False, dtype=str) for p in (a, b))
    x, y = (d.drop(columns=[c for c in TIMING + RUN if c in d]) for d in (x, y))
    if list(x.columns) != list(y.columns): return [f"columns {list(x.columns)} != {list(y.columns)}"]
    if x.shape != y.shape: return [f"shape {x.shape} != {y.shape}"]
    out = []
    for i in x.index:
        u, v = list(x.loc[i]), list(y.loc[i])
        if ROUNDING_ROW in u or ROUNDING_ROW in v:
            if _verdicts(u) != _verdicts(v): out.append(f"row {i}: {_verdicts(u)} != {_verdicts(v)}")
        else: out += [f"row {i}, {c}: {x.at[i, c]!r} != {y.at[i, c]!r}" for c in x.columns if not _same(x.at[i, c], y.at[i, c])]
    return out

def _md_rows(text: str) -> list:
    "The lines of a Markdown file, each table row as a list of its cells without the TIMING columns."
    lines, drop, out = [l for l in text.splitlines() if not l.startswith("Provenance: ")], set(), []
    for i, l in enumerate(lines):
        if not l.lstrip().startswith("|"): out.append(l); drop = set(); continue
        cells = [c.strip() for c in l.strip().strip("|").split("|")]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if set(nxt.replace("|", "").strip()) <= set(":- ") and "-" in nxt and not drop:   # a header row
            drop = {j for j, c in enumerate(cells) if c in TIMING}
        out.append([c for j, c in enumerate(cells) if j not in drop])
    return out

def _md_diffs(a: Path, b: Path) -> list:
    x, y = _md_rows(a.read_text()), _md_rows(b.read_text())
    if len(x) != len(y): return [f"{len(x)} lines != {len(y)} lines"]
    out = []
    for i, (l, m) in enumerate(zip(x, y)):
        if isinstance(l, list) and isinstance(m, list) and (ROUNDING_ROW in l or ROUNDING_ROW in m):
            if _verdicts(l) != _verdicts(m): out.append(f"line {i + 1}: {_verdicts(l)} != {_verdicts(m)}")
        elif isinstance(l, list) and isinstance(m, list) and len(l) == len(m):
            out += [f"line {i + 1}, cell {j + 1}: {c!r} != {d!r}" for j, (c, d) in enumerate(zip(l, m)) if not _same(c, d, printed=True)]
        elif l != m: out.append(f"line {i + 1}: {l!r} != {m!r}")
    return out

def _json_diffs(a, b, at="") -> list:
    if isinstance(a, dict) and isinstance(b, dict):
        ka, kb = set(a) - set(TIMING) - set(RUN), set(b) - set(TIMING) - set(RUN)
        if ka != kb: return [f"{at or '/'}: keys {sorted(ka ^ kb)} in only one"]
        return [d for k in sorted(ka) for d in _json_diffs(a[k], b[k], f"{at}/{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b): return [f"{at}: {len(a)} items != {len(b)}"]
        return [d for i, (u, v) in enumerate(zip(a, b)) for d in _json_diffs(u, v, f"{at}[{i}]")]
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)) or not _same(a, b): return [f"{at}: {a!r} != {b!r}"]
    return []

def table_diffs(a: Path, b: Path) -> list:
    "Every difference between two tables (.csv, .md or .json) but the TIMING fields, as readable lines; [] if equal."
    a, b = Path(a), Path(b)
    if a.suffix == ".csv": return _csv_diffs(a, b)
    if a.suffix == ".md": return _md_diffs(a, b)
    if a.suffix == ".json": return _json_diffs(json.loads(a.read_text()), json.loads(b.read_text()))
    raise ValueError(f"not a table: {a}")


def test_table_diffs_finds_a_changed_cell(tmp_path):
    "The comparison can fail: one changed value is found in each format, a changed wall time is not a difference."
    def pair(name, a, b):
        (tmp_path/f"a{name}").write_text(a); (tmp_path/f"b{name}").write_text(b)
        return table_diffs(tmp_path/f"a{name}", tmp_path/f"b{name}")
    csv = "method,refusal,response,sweep_s\nss,0.25,Sure,12.5\nnone,1.0,I cannot,0.0\n"
    assert pair(".csv", csv, csv.replace("12.5", "99.0")) == []
    assert pair(".csv", csv, csv.replace("0.25", "0.2500001")) == []                        # float rounding
    assert pair(".csv", csv, csv.replace("0.25", "0.2505")) == ["row 0, refusal: '0.25' != '0.2505'"]
    assert pair(".csv", csv, csv.replace("1.0,I", "1,I")) == []                              # the same number
    assert pair(".csv", csv, csv.replace("1.0,I", "2,I")) != []
    assert pair(".csv", csv, csv.replace("Sure", "Sure.")) == ["row 0, response: 'Sure' != 'Sure.'"]
    assert pair(".csv", csv, csv.replace("Sure", "Sure b = -1.4e-08")) != []
    t = csv.replace("Sure", "b1.b2 = -1.4e-08")
    assert pair(".csv", t, t.replace("-1.4e-08", "-7.5e-08")) == []                      # a rounding-size number in text
    assert pair(".csv", t, t.replace("-1.4e-08", "-0.25")) != []
    assert pair(".csv", csv, csv + "actadd,0.5,Ok,1.0\n") != []
    f1 = "quantity,fp32,holds_fp32,verdict\nmax angle error (deg),0.000366,yes,holds; worst error/bound 0.04\n"
    assert pair(".csv", f1, f1.replace("0.000366", "0.000732").replace("0.04", "0.08")) == []  # a rounding error's size
    assert pair(".csv", f1, f1.replace(",yes,holds;", ",no,does not hold;")) != []             # its verdict
    md = "Model x.\n\n| method | refusal | sweep_s |\n|:--|--:|--:|\n| ss | 0.250 | 12.5 |\n"
    assert pair(".md", md, md.replace("12.5", "3.0")) == []
    assert pair(".md", md, md.replace("0.250", "0.251")) == []                               # the last printed digit
    assert pair(".md", md, md.replace("0.250", "0.252")) == ["line 5, cell 2: '0.250' != '0.252'"]
    assert pair(".md", md, md.replace("Model x.", "Model y.")) != []
    js = json.dumps(dict(layer=23, L_disc=dict(ss=[13, 16]), threshold=2.0, wall_s=10.0))
    assert pair(".json", js, js.replace("10.0", "20.0")) == []
    assert pair(".json", js, js.replace("16]", "17]")) == ["/L_disc/ss[1]: 16 != 17"]
    pc = "method,refusal,model,commit,dirty,command\nss,0.25,m,abc,False,steerkit reproduce --quick\n"   # what made a file is not a result
    assert pair(".csv", pc, pc.replace("abc,False,steerkit reproduce --quick", "def,True,make test")) == []
    assert pair(".md", "Provenance: model=m commit=abc\n\n" + md, "Provenance: model=m commit=def, command: x\n\n" + md) == []
    assert pair(".json", json.dumps(dict(layer=23, provenance=dict(commit="abc"))), json.dumps(dict(layer=23, provenance=dict(commit="def")))) == []


def _tables(entries) -> list:
    return [o for e in entries for o in e["outputs"] if Path(o).suffix in TABLES]

def _complete(out: Path, entries) -> bool:
    "Every declared output of `entries` is in `out`, and the timings record them as run."
    try: t = pd.read_csv(out/"_runs"/"timings.csv")
    except Exception: return False
    ok = set(t[t.status == "ok"].notebook)
    return all(e["notebook"].name in ok for e in entries) and all((out/o).is_file() for e in entries for o in e["outputs"])


def second_run(dest: Path) -> tuple:
    """The second quick run of the `RERUN` notebooks into `dest/out`, from a fresh, empty kit cache `dest/cache` (only the
    converted embedded model and the merged organism linked in, so nothing generated before is reused); `(out, cache)`.
    `make test` runs it beside the first (`python tests/test_determinism.py DEST`, exported as STEERKIT_QUICK_AGAIN)."""
    from steerkit.models import model_caches
    fresh, out = dest/"cache", dest/"out"
    if fresh.exists(): shutil.rmtree(fresh)
    fresh.mkdir(parents=True)
    for model in model_caches():         # the converted embedded model, the merged organism: weights, not regenerated
        (fresh/model.name).symlink_to(model, target_is_directory=True)
    with patch.dict(os.environ, STEERKIT_CACHE=str(fresh)):    # the paper notebooks' kernels inherit the environment
        reproduce("quick", out_dir=out, only=",".join(RERUN), progress=False)
    return out, fresh


@pytest.mark.quick_outputs
def test_quick_tables_are_identical_on_a_second_run(tmp_path):
    m = load_manifest(REPO/"nbs"/"paper"/"manifest.json")
    entries = [e for e in m["notebooks"] if e["name"] in RERUN]
    assert sorted(e["name"] for e in entries) == sorted(RERUN), "a RERUN notebook left the manifest: update RERUN"
    assert _tables(entries), "the RERUN notebooks declare no tables"
    first = Path(os.environ.get("STEERKIT_QUICK_OUT") or tmp_path/"quick")
    if not _complete(first, entries):
        first = tmp_path/"quick"
        reproduce("quick", out_dir=first, only=",".join(RERUN), progress=False)
    again = Path(os.environ.get("STEERKIT_QUICK_AGAIN") or tmp_path/"again")
    second, fresh = (again/"out", again/"cache") if _complete(again/"out", entries) else second_run(again)
    assert any((fresh/"generations").glob("*.jsonl")), "the second run generated nothing into its fresh cache"
    diffs = {o: table_diffs(first/o, second/o) for o in _tables(entries)}
    bad = {o: d[:10] + ([f"... {len(d) - 10} more"] if len(d) > 10 else []) for o, d in diffs.items() if d}
    assert not bad, "the quick tables differ between two runs:\n" + json.dumps(bad, indent=1)


if __name__ == "__main__":                                     # make test: the second run, beside the first
    import sys
    second_run(Path(sys.argv[1]).resolve())
