"""Interrupted work loses nothing: a sweep killed by a signal resumes with only its missing rows, a damaged cache is
reported and skipped, two processes appending to one cache leave it readable, and hooks never outlive an exception."""
import json, signal, subprocess, sys, time, warnings
from pathlib import Path
import pytest
import fastcore.test as fct

SWEEP = r'''
import sys, torch
from steerkit.models import tiny_model
from steerkit.operators import orthonormal_plane
from steerkit.methods import Vectors, method, ANGLES
from steerkit.evaluate import sweep
m, tok = tiny_model("llama")
torch.manual_seed(0)
b1, b2 = orthonormal_plane(torch.randn(64), torch.randn(64))
v = Vectors("ss", dict(b1=b1, b2=b2), [dict(layer=1, site="resid_in", dirs=dict(b1="b1", b2="b2"))], {})
prompts = [f"Prompt {i}: say something." for i in range(int(sys.argv[2]), int(sys.argv[3]))]
df = sweep(m, tok, prompts, method(v, m), grid=list(range(0, 360, 36)), max_new_tokens=int(sys.argv[4]), batch_size=2,
           cache=sys.argv[1], progress=False)
print("generated", df.attrs["generated"], "reused", df.attrs["reused"])
'''


def run_sweep(cache, lo, hi, tokens, **kw):
    return subprocess.Popen([sys.executable, "-c", SWEEP, str(cache), str(lo), str(hi), str(tokens)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def rows(cache):
    from steerkit.generate import GenCache
    with warnings.catch_warnings():
        warnings.simplefilter("ignore"); c = GenCache(cache)
    return c


def test_killed_sweep_resumes_with_only_the_missing_rows(tmp_path):
    cache = tmp_path/"gen.jsonl"
    p = run_sweep(cache, 0, 6, 40)                        # 6 prompts x 10 angles = 60 rows, 2 per batch
    t0 = time.time()
    while time.time() - t0 < 300 and p.poll() is None:
        if cache.exists() and len(cache.read_bytes().splitlines()) >= 6: break
        time.sleep(0.01)
    assert p.poll() is None, "the sweep finished before it could be killed: make it longer"
    p.send_signal(signal.SIGKILL); p.wait()
    done = len(rows(cache).rows)
    assert 6 <= done < 60, done
    r = run_sweep(cache, 0, 6, 40); out, err = r.communicate(timeout=600)
    assert r.returncode == 0, err[-2000:]
    fct.test_eq(out.split()[-4:], ["generated", str(60 - done), "reused", str(done)])
    fct.test_eq(len(rows(cache).rows), 60)
    r = run_sweep(cache, 0, 6, 40); out, _ = r.communicate(timeout=600)
    fct.test_eq(out.split()[-4:], ["generated", "0", "reused", "60"])


def test_two_processes_share_one_cache(tmp_path):
    cache = tmp_path/"gen.jsonl"
    ps = [run_sweep(cache, 0, 4, 6), run_sweep(cache, 2, 6, 6)]   # overlapping prompts, written at the same time
    for p in ps:
        out, err = p.communicate(timeout=600); assert p.returncode == 0, err[-2000:]
    c = rows(cache)
    fct.test_eq((c.skipped, len(c.rows)), (0, 60))
    for line in cache.read_text().splitlines(): json.loads(line)           # every line is whole


def test_damaged_cache_is_reported_not_fatal(tmp_path):
    from steerkit.generate import GenCache, generate
    from steerkit.models import tiny_model
    m, tok = tiny_model("llama")
    cache = tmp_path/"gen.jsonl"
    generate(m, tok, ["Hi", "Bye"], max_new_tokens=3, cache=cache, progress=False)
    cache.write_bytes(cache.read_bytes()[:-7])                   # truncated mid-line
    with pytest.warns(UserWarning, match="1 unreadable line"):
        df = generate(m, tok, ["Hi", "Bye"], max_new_tokens=3, cache=cache, progress=False)
    fct.test_eq((df.attrs["generated"], df.attrs["reused"]), (1, 1))
    cache.write_text("not json at all\n{\"no\": \"key\"}\n")
    with pytest.warns(UserWarning, match="2 unreadable line"): fct.test_eq(len(GenCache(cache).rows), 0)


def test_hooks_removed_when_steered_generation_raises():
    import torch
    from steerkit.models import tiny_model, chat, encode
    from steerkit.steer import steering, interventions, greedy
    m, tok = tiny_model("llama")
    enc = encode(tok, chat(tok, ["Hi"]))
    calls = []
    def boom(h, p):
        calls.append(1)
        if len(calls) == 3: raise RuntimeError("fails in the third forward pass")
        return h
    with pytest.raises(RuntimeError, match="third forward"):
        with steering(m, interventions(boom, [0, 1], "resid_in")): greedy(m, enc, 5)
    fct.test_eq(sum(len(x._forward_hooks) + len(x._forward_pre_hooks) for x in m.modules()), 0)
