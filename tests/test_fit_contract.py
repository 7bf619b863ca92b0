"""The fit contract (issue: one data object, the spec is the method, your own pairs on the command line): a method
defined in a separate module runs through fit, freeze, `steerkit calibrate --pairs`, `generate` and `serve` via
`--method module:name`; every listed method is found in a fresh process; no module outside the registry branches on
a method's name."""
import json, os, re, subprocess, sys, textwrap
from pathlib import Path
import httpx, pytest
import fastcore.test as fct
from steerkit.models import tiny_model
from conftest import steerkit_cli, steerkit_here

ROOT = Path(__file__).resolve().parents[1]
LISTED = ["ss", "sas", "aas", "actadd", "dirabl", "none", "caa", "austeer", "sadi", "sadi-fixed", "saas"]

EXT = textwrap.dedent('''
    "A method the kit has never seen: the mean difference of the pairs at one block output, added from the prompt's end on."
    from steerkit.methods import Spec, Setting, Vectors, register, mean_difference
    from steerkit.models import model_fingerprint
    def fit_ext(model, tok, data, layer=1, progress=True):
        r = mean_difference(model, tok, data, layer, "resid_out", progress=progress)
        return Vectors("ext-add", {"v": r}, [dict(layer=layer, site="resid_out", dirs=dict(v="v"))],
                       dict(fingerprint=model_fingerprint(model)))
    register(Spec("ext-add", "add", "m", (0.0, 1.0, 2.0), "after_prompt", fit_ext, "an outside method",
                  settings=(Setting("layer", 1),)))
    ''')


def test_every_listed_method_in_a_fresh_process():
    code = "from steerkit.methods import get_spec; import json; print(json.dumps([get_spec(n).name for n in %r]))" % LISTED
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    fct.test_eq(json.loads(r.stdout.strip().splitlines()[-1]), LISTED)


def test_no_module_outside_the_registry_branches_on_a_method_name():
    from steerkit.methods import builtin_modules, method_names
    names = method_names()
    own = {"methods.py"} | {m.split(".")[-1] + ".py" for m in builtin_modules()}   # the registry and the methods' own modules
    alt = "|".join(re.escape(n) for n in names)
    pats = [re.compile(rf"""(==|!=)\s*["']({alt})["']"""), re.compile(rf"""["']({alt})["']\s*(==|!=)"""),
            re.compile(rf"""\bin\s*\([^)]*["']({alt})["'][^)]*\)"""), re.compile(r"\bPLANE_METHODS\b")]
    hits = []
    for f in sorted((ROOT/"steerkit").glob("*.py")):
        if f.name in own or f.name.startswith("_"): continue
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if any(p.search(line) for p in pats): hits.append(f"{f.name}:{i}: {line.strip()}")
    assert not hits, "branches on a method's name outside the registry:\n" + "\n".join(hits)


def test_the_grep_finds_a_branch():
    "The pattern of the test above is not blind: it flags the kinds of line it must."
    alt = "ss|caa|none"
    pats = [re.compile(rf"""(==|!=)\s*["']({alt})["']"""), re.compile(rf"""\bin\s*\([^)]*["']({alt})["'][^)]*\)""")]
    for line in ('if name == "caa": pass', "if n in ('ss', 'sas'): x", 'if m != "none":'):
        assert any(p.search(line) for p in pats), line
    assert not any(p.search('names = ["ss", "caa"]') for p in pats)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "A tiny model directory, the outside method's module, a pairs file, neutral requests and prompts."
    d = tmp_path_factory.mktemp("ext")
    m, tok = tiny_model("llama"); m.save_pretrained(d/"tiny"); tok.save_pretrained(d/"tiny")
    (d/"mods").mkdir(); (d/"mods"/"extmod.py").write_text(EXT)
    words = ["walk", "film", "meal", "trip", "game", "book", "song", "park"]
    (d/"pairs.jsonl").write_text("".join(json.dumps(dict(positive=f"I loved the {w}.", negative=f"I hated the {w}.")) + "\n" for w in words))
    (d/"neutral.txt").write_text("Tell me about your day.\nDescribe a chair.\n")
    (d/"prompts.txt").write_text("Tell me about your weekend.\nDescribe your street.\n")
    return d


def test_outside_method_through_calibrate_pairs_generate_and_serve(world, tmp_path):
    env = dict(PYTHONPATH=os.pathsep.join([str(world/"mods"), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path/"frozen"
    r = steerkit_cli("calibrate", "--model", world/"tiny", "--method", "extmod:ext-add", "--pairs", world/"pairs.jsonl",
            "--neutral", world/"neutral.txt", "--grid", "0,1,2", "--max-new-tokens", 4, "--out", out, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    j = json.loads((out/"vectors.json").read_text())
    fct.test_eq((j["method"], j["meta"]["method_ref"], j["meta"]["n_fit"], j["meta"]["n_held"]), ("ext-add", "extmod:ext-add", 4, 4))
    fct.test_eq([s["value"] for s in j["meta"]["sweep"]], ["0.0", "1.0", "2.0"])
    frozen = j["meta"]["param"]
    assert frozen in (0.0, 1.0, 2.0)
    ans = tmp_path/"a.jsonl"
    r = steerkit_cli("generate", "--model", world/"tiny", "--method", "extmod:ext-add", "--calibration", out, "--prompts", world/"prompts.txt",
            "--out", ans, "--max-new-tokens", 4, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(l) for l in ans.read_text().splitlines()]
    fct.test_eq([(x["method"], x["param"], x["param_name"]) for x in rows], [("ext-add", frozen, "m")] * 2)
    assert rows[0]["param_source"].startswith("frozen on 4 held-out pairs")
    # the server: imports the module, serves the frozen vectors, steers a request with them
    from test_serve import free_port, start, stop
    port = free_port()
    p = start("--model", world/"tiny", "--method", "extmod:ext-add", "--vectors", out, "--no-frozen", port=port, env=env)
    try:
        lst = httpx.get(f"http://127.0.0.1:{port}/v1/steering", timeout=30).json()
        assert any(e["method"] == "ext-add" for e in (lst.get("data") or lst.get("vectors") or lst)), lst
        served = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).json()["data"][0]["id"]
        body = dict(model=served, messages=[dict(role="user", content="Hi")], max_tokens=3, steering=dict(method="ext-add", param=2.0))
        res = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=120)
        assert res.status_code == 200, res.text
        fct.test_eq((res.json()["steerkit"]["method"], res.json()["steerkit"]["param"]), ("ext-add", 2.0))
        plain = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=120,
                           json=dict(model=served, messages=[dict(role="user", content="Hi")], max_tokens=3, steering=dict(method="none"))).json()
        fct.test_eq(plain["steerkit"]["method"], "none")
    finally: stop(p)


def test_calibrate_pairs_bad_inputs_fail_before_the_model_loads(world, tmp_path):
    bad = tmp_path/"bad.jsonl"; bad.write_text('{"positive": "a", "negative": "b"}\n{"positive": "a"}\n')
    r = steerkit_here("calibrate", "--model", "no/such-model-anywhere", "--method", "caa", "--pairs", bad)
    assert r.returncode == 2 and "line 2" in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    r = steerkit_here("calibrate", "--model", world/"tiny", "--method", "no_such_mod_q:x", "--pairs", world/"pairs.jsonl")
    assert r.returncode == 2 and "cannot import module 'no_such_mod_q'" in r.stderr, r.stderr[-2000:]
    r = steerkit_here("calibrate", "--model", world/"tiny", "--method", "caa", "--neutral", world/"neutral.txt")
    assert r.returncode == 2 and "go with --pairs" in r.stderr, r.stderr[-2000:]
