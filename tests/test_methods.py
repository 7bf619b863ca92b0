"""The method registry: Selective Steering unchanged by the refactor (against results recorded before it), content keys
that never collide, a new method from a spec alone, per-row parameters and the KV cache for every registered method, and
CAA / AUSteer / SADI from the command line through saved and reloaded Vectors."""
import json
from pathlib import Path
import pytest, torch
import pandas as pd
import fastcore.test as fct
from steerkit.models import load_model, tiny_model, chat, encode, rtol, model_fingerprint
from steerkit.data_sets import load_prompts, split
from steerkit.directions import calibrate_plane
from steerkit.generate import generate, GenCache
from steerkit.steer import batch_vs_alone, cache_equivalence
from steerkit.methods import (Vectors, Spec, REGISTRY, register, get_spec, method, method_names, plane_vectors,
                              direction_vectors)
from steerkit.evaluate import sweep
from steerkit.caa import ab_items
from conftest import steerkit_here

DATA = Path(__file__).parent/"data"


def test_ss_unchanged_by_the_registry():
    "Calibration and SS generations on the embedded model equal those recorded with the code before the registry (1c528a4)."
    ref = json.loads((DATA/"ss_before_registry.json").read_text())
    m, tok = load_model()
    fct.test_eq(model_fingerprint(m), ref["fingerprint"])
    harm, _ = split(load_prompts("harmbench"), n_calib=8, seed=0)
    safe, _ = split(load_prompts("harmless"), n_calib=8, seed=0)
    plane = calibrate_plane(m, tok, harm["prompt"], safe["prompt"], progress=False)
    fct.test_eq((plane.L_disc, plane.k_star), (ref["L_disc"], ref["k_star"]))
    for k in ("b1", "b2"): assert (getattr(plane, k) - torch.tensor(ref[k])).abs().max() < 1e-4
    mm = method(plane_vectors(plane, "ss"), m)
    P, A = ref["prompts"], ref["angles"]
    df = generate(m, tok, [p for a in A for p in P], mm.ivs, params=[a for a in A for p in P], method=mm.key,
                  max_new_tokens=16, cache=None, progress=False)
    old = pd.DataFrame(ref["rows"])
    tie = torch.minimum(torch.tensor(df.tie_margin.values), torch.tensor(old.tie_margin.values)) < 2 * rtol()
    same = (df.response.values == old.response.values) | tie.numpy()
    assert same.all(), df[~same]
    ok = ~tie.numpy()
    assert ((df.self_ppl.values[ok] / old.self_ppl.values[ok] - 1).__abs__() < 1e-3).all()


def test_keys_never_collide(tmp_path):
    "Vectors of equal sum and norm get different keys, so the generation cache keeps their rows apart."
    m, tok = tiny_model("llama")
    v = torch.randn(64)
    a = direction_vectors("actadd", v, layer=1)
    b = direction_vectors("actadd", v.flip(0), layer=1)
    assert abs(float(a.tensors["r"].sum() - b.tensors["r"].sum())) < 1e-5 and abs(float(a.tensors["r"].norm() - b.tensors["r"].norm())) < 1e-5
    assert a.key != b.key
    ma, mb = method(a, m), method(b, m)
    assert ma.key != mb.key
    cache = tmp_path/"gen.jsonl"
    ra = generate(m, tok, ["Hi"], ma.ivs, params=[4.0], method=ma.key, max_new_tokens=4, cache=cache, progress=False)
    rb = generate(m, tok, ["Hi"], mb.ivs, params=[4.0], method=mb.key, max_new_tokens=4, cache=cache, progress=False)
    fct.test_eq(len(GenCache(cache).rows), 2)                 # the second did not read the first's row
    assert ra.self_ppl[0] != rb.self_ppl[0]


def test_a_new_method_is_one_spec():
    "A method the kit has never seen runs through the harness (sweep with per-row values) from a Spec alone."
    m, tok = tiny_model("llama")
    def fit(model, tok, data, **kw):
        return Vectors("test-shift", dict(s=torch.ones(64)), [dict(layer=2, site="mlp_out", dirs=dict(v="s"))],
                       dict(fingerprint=model_fingerprint(model)))
    register(Spec("test-shift", "add", "m", (0.0, 3.0), "all", fit))
    try:
        fct.test_eq("test-shift" in method_names(), True)
        mm = method(get_spec("test-shift").fit(m, tok, {}), m)
        df = sweep(m, tok, ["Hi", "Name a fruit."], mm, max_new_tokens=4, cache=False, progress=False)
        fct.test_eq(df.value.tolist(), [0.0, 0.0, 3.0, 3.0])
        base = generate(m, tok, ["Hi", "Name a fruit."], max_new_tokens=4, progress=False)
        assert (df.self_ppl[:2].values - base.self_ppl.values).__abs__().max() < 1e-3 * base.self_ppl.max()
    finally:
        del REGISTRY["test-shift"]


@pytest.fixture(scope="module")
def fitted():
    m, tok = tiny_model("llama")
    fit, _ = ab_items("corrigible-neutral-HHH", 8)
    vs = {n: get_spec(n).fit(m, tok, dict(items=fit), progress=False, **kw)
          for n, kw in (("caa", dict(layer=1)), ("austeer", dict(k=6)), ("sadi", dict(K=2)), ("sadi-fixed", dict(K=2)))}
    return m, tok, vs


@pytest.mark.parametrize("name", ["caa", "austeer", "sadi", "sadi-fixed"])
def test_new_methods_per_row_and_cache(fitted, name):
    "Per-row parameters (one batch = each row alone) and KV-cache equivalence at each method's token positions."
    m, tok, vs = fitted
    mm = method(vs[name], m)
    prompts = ["Hi", "Write a haiku about autumn.", "What is 2+2?"]
    g = list(get_spec(name).grid)
    params = [g[0], g[-1], g[len(g) // 2]]
    assert batch_vs_alone(m, tok, prompts, mm.ivs, params).ok
    r = cache_equivalence(m, encode(tok, chat(tok, prompts)), mm.ivs, param=g[-1], phase=mm.phase, max_new_tokens=6)
    assert r.ok, r


def test_caa_parity_with_steering_vectors():
    """CAA's vectors equal those of steering-vectors 0.12.2 (the library that reproduces the original CAA vectors): mean
    aggregator, read at token -2 (the answer letter), decoder-block output, on the same chat texts, embedded model."""
    from steering_vectors import train_steering_vector
    from steerkit.caa import caa_vectors
    m, tok = load_model()
    fit, _ = ab_items("sycophancy", 8)
    L = [0, 12, m.config.num_hidden_layers - 1]
    v = caa_vectors(m, tok, fit, layers=L, batch_size=4, progress=False)         # batched, left-padded
    q = [r["question"] for r in fit]
    pos, neg = chat(tok, q, responses=[r["matching"] for r in fit]), chat(tok, q, responses=[r["non_matching"] for r in fit])
    sv = train_steering_vector(m, tok, list(zip(pos, neg)), layers=L, read_token_index=-2, batch_size=1)   # one text at a time
    for l in L:
        a, b = v.tensors[f"v.{l}"], sv.layer_activations[l].float()
        assert (a - b).norm() <= 1e-4 * b.norm() + 1e-5, (l, float((a - b).norm()), float(b.norm()))
        assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.9999




@pytest.mark.parametrize("name", ["caa", "austeer", "sadi"])
def test_cli_fit_save_reload_generate(tmp_path, name):
    "`steerkit calibrate` then `generate` for CAA/AUSteer/SADI; the saved Vectors reload and steer the same in Python."
    d = tmp_path/"tiny"
    m, tok = tiny_model("llama"); m.save_pretrained(d); tok.save_pretrained(d)
    fz = tmp_path/"frozen"
    r = steerkit_here("calibrate", "--model", d, "--method", name, "--out", fz, "--n-calib", 2, "--max-new-tokens", 3)
    assert r.returncode == 0, r.stderr[-2000:]
    j = json.loads((fz/"vectors.json").read_text())
    fct.test_eq(j["method"], name)
    assert j["meta"]["param"] in get_spec(name).grid
    p = tmp_path/"p.txt"; p.write_text("Name a fruit.\nWhat is 2+2?\n")
    out = tmp_path/"o.jsonl"
    r = steerkit_here("generate", "--model", d, "--method", name, "--prompts", p, "--out", out, "--calibration", fz, "--max-new-tokens", 5)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    fct.test_eq({x["param"] for x in rows}, {j["meta"]["param"]})
    fct.test_eq({x["param_name"] for x in rows}, {get_spec(name).param_name})
    v = Vectors.load(fz, m)
    mm = method(v, m)
    df = generate(m, tok, ["Name a fruit.", "What is 2+2?"], mm.ivs, params=v.meta["param"], method=mm.key, phase=mm.phase,
                  max_new_tokens=5, progress=False)
    same = [a == b["response"] or t < 2 * rtol() for a, b, t in zip(df.response, rows, df.tie_margin)]   # a rounding tie may flip
    fct.test_eq(same, [True, True])
