"""Equivalence properties (KV cache, per-row parameters, batch order, padding) under other thread counts and batch
orders, so that a test which only holds on one CPU fails on the developer's machine before it fails in CI.
Every comparison goes through `greedy_agreement` / `rel_gap` with tolerances from the dtype and the magnitude."""
import pytest, torch
import fastcore.test as fct
from steerkit.models import load_model, tiny_model, chat, encode, rtol
from steerkit.adapters import adapter
from steerkit.capture import padding_gap
from steerkit.steer import (PHASES, interventions, steering, greedy, greedy_agreement, cache_equivalence,
                            batch_vs_alone, per_row_gap)

PROMPTS = ["Hi", "Write a haiku about autumn.", "What is 2+2?", "Name three rivers in Europe."]
ORDERS = {"given": [0, 1, 2, 3], "reversed": [3, 2, 1, 0]}


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def threads(request):
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(old)


def _add(v):
    return lambda h, a: h + (1.0 if a is None else a) * v


@pytest.fixture(scope="module")
def tiny():
    m, tok = tiny_model("llama")
    torch.manual_seed(0)
    return m, tok, _add(torch.randn(64))


@pytest.fixture(scope="module")
def embedded():
    from steerkit.data_sets import load_prompts, split
    from steerkit.directions import calibrate_plane
    m, tok = load_model()
    harm, _ = split(load_prompts("harmbench"), n_calib=8, seed=0)
    safe, _ = split(load_prompts("harmless"), n_calib=8, seed=0)
    return m, tok, calibrate_plane(m, tok, harm["prompt"], safe["prompt"], progress=False)


@pytest.mark.parametrize("phase", PHASES)
def test_cache_equivalence_tiny(threads, tiny, phase):
    m, tok, add = tiny
    r = cache_equivalence(m, encode(tok, chat(tok, PROMPTS)), interventions(add, [1, 2], "resid_in"), param=3.0, phase=phase)
    assert r.ok, r
    fct.test_eq(r.total, 4 * 12)


@pytest.mark.parametrize("order", ORDERS)
def test_batch_vs_alone_tiny(threads, tiny, order):
    m, tok, add = tiny
    ivs = interventions(add, [1], "resid_in")
    assert batch_vs_alone(m, tok, PROMPTS, order=ORDERS[order]).ok
    r = batch_vs_alone(m, tok, PROMPTS, ivs, [0.0, 1.0, -2.0, 5.0], order=ORDERS[order])
    assert r.ok, r


def test_per_row_gap_tiny(threads, tiny):
    m, tok, add = tiny
    r = per_row_gap(m, tok, "Tell me about cats.", interventions(add, [1, 2], "resid_in"), [0.0, 1.0, -2.0, 5.0])
    assert r.ok, r


def test_agreement_catches_a_wrong_parameter(tiny):
    "The check can fail: a batch whose rows all got the first row's parameter is not the per-row batch."
    m, tok, add = tiny
    ivs = interventions(add, [1], "resid_in")
    enc = encode(tok, chat(tok, ["Tell me about cats."] * 2))
    with steering(m, ivs, param=[1.0, 5.0]): right = greedy(m, enc, 6)
    with steering(m, ivs, param=1.0): wrong = greedy(m, enc, 6)
    assert not greedy_agreement(right, wrong).ok


def test_phase_offsets_under_cache(tiny):
    "Decode steps with the cache are placed after the prompt (a wrong cache keyword would place them at 0)."
    m, tok, add = tiny
    enc = encode(tok, chat(tok, PROMPTS))
    T = enc["input_ids"].shape[1]
    with steering(m, interventions(add, [1], "resid_in"), param=1.0, phase="generated") as s: greedy(m, enc, 3)
    fct.test_eq(s.offsets, [0, T, T + 1])


@pytest.mark.parametrize("fam", ["qwen2", "gemma2"])
def test_padding_gap_tiny_families(threads, fam):
    m, tok = tiny_model(fam)
    assert padding_gap(m, tok, PROMPTS, sites=adapter(m).sites) < rtol()


@pytest.mark.parametrize("order", ORDERS)
def test_ss_embedded_batch_order_and_cache(threads, embedded, order):
    "SS at four angles as per-row parameters on the embedded model: batch (in either order) = alone, cache = no cache."
    from steerkit.methods import method, plane_vectors
    m, tok, plane = embedded
    ivs = method(plane_vectors(plane, "ss"), m).ivs
    angles = [0.0, 60.0, 180.0, 300.0]
    r = batch_vs_alone(m, tok, PROMPTS, ivs, angles, order=ORDERS[order], max_new_tokens=6)
    assert r.ok, r
    enc = encode(tok, chat(tok, [PROMPTS[i] for i in ORDERS[order]]))
    c = cache_equivalence(m, enc, ivs, param=[angles[i] for i in ORDERS[order]], max_new_tokens=6)
    assert c.ok, c
