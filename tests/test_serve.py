"""`steerkit serve` as a user runs it: the real server in its own process, driven over HTTP by the official `openai`
client (no mock objects). The refusing organism, steered with Selective Steering on its calibrated plane."""
import json, os, re, socket, subprocess, sys, threading, time
from pathlib import Path
import httpx, pytest
import fastcore.test as fct
from openai import OpenAI, BadRequestError, NotFoundError, AuthenticationError

EXE = Path(sys.executable).with_name("steerkit")
README = Path(__file__).resolve().parents[1]/"README.md"
KEY = "test-key"
MODEL = "embedded-refusal"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def start(*args, port, env=None):
    "Start `steerkit serve ... --port port`; wait until it answers (or fail with its output)."
    p = subprocess.Popen([str(EXE), "serve", *map(str, args), "--port", str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
    t0 = time.time()
    while time.time() - t0 < 300:
        if p.poll() is not None: raise AssertionError(f"server exited {p.returncode}: {p.stdout.read()[-3000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1); return p
        except httpx.HTTPError: time.sleep(0.3)
    p.kill(); raise AssertionError("server did not start in 300 s")


def stop(p):
    p.terminate()
    try: return p.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired: p.kill(); return p.communicate()[0]


@pytest.fixture(scope="module")
def harmful():
    from steerkit.data_sets import load_prompts, split
    _, test = split(load_prompts("harmbench"), n_calib=16, n_test=4, seed=0)
    return list(test["prompt"])


@pytest.fixture(scope="module")
def vectors_dir(tmp_path_factory):
    "SS vectors of the organism: its plane on 16 + 16 calibration prompts, with a given frozen angle (150)."
    from steerkit.models import load_model
    from steerkit.data_sets import load_prompts, split
    from steerkit.methods import fit_plane
    m, tok = load_model(MODEL)
    hc, _ = split(load_prompts("harmbench"), n_calib=16, seed=0)
    sc, _ = split(load_prompts("harmless"), n_calib=16, seed=0)
    v = fit_plane(m, tok, dict(pos=list(hc["prompt"]), neg=list(sc["prompt"])), progress=False)
    v.meta.update(param=150.0, param_name="theta")
    d = tmp_path_factory.mktemp("ss"); v.save(d)
    return d


@pytest.fixture(scope="module")
def server(vectors_dir):
    port = free_port()
    p = start("--model", MODEL, "--vectors", vectors_dir, "--no-frozen", "--api-key", KEY, "--batch-window-ms", 400,
              "--max-tokens-limit", 64, "--max-prompt-tokens", 256, port=port)
    yield dict(port=port, url=f"http://127.0.0.1:{port}/v1", proc=p,
               client=OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0, timeout=300))
    out = stop(p)
    print(out[-2000:])


def ask(client, prompt, steering=None, max_tokens=24, **kw):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                       extra_body={"steering": steering}, **kw)
    return dict(text=r.choices[0].message.content, finish=r.choices[0].finish_reason, usage=r.usage, **r.steerkit)


def same(a, b): return a["text"] == b["text"] or min(a["tie_margin"], b["tie_margin"]) < 2e-4


def test_models_and_steering_listed(server):
    fct.test_eq([m.id for m in server["client"].models.list().data], [MODEL])
    s = httpx.get(server["url"] + "/steering", headers={"Authorization": f"Bearer {KEY}"}).json()
    fct.test_eq([(e["method"], e["param_name"], e["frozen_param"]) for e in s["data"]], [("ss", "theta", 150.0)])
    fct.test_eq(len(s["fingerprint"]), 16)


def test_unsteered_refuses_and_ss_changes_the_answer(server, harmful):
    c = server["client"]
    plain = ask(c, harmful[0])
    from steerkit.metrics import refusal_score
    assert refusal_score(plain["text"]) == 1, plain["text"]          # the organism refuses a held-out HarmBench prompt
    fct.test_eq((plain["method"], plain["param"]), ("none", None))
    ss = ask(c, harmful[0], {"method": "ss"})
    fct.test_eq((ss["method"], ss["param"]), ("ss", 150.0))          # the frozen angle when no param is given
    assert ss["text"] != plain["text"]
    fct.test_eq(ask(c, harmful[0], {"method": "ss", "param": 150})["text"], ss["text"])
    fct.test_eq(ss["usage"].completion_tokens, 24 if ss["finish"] == "length" else ss["usage"].completion_tokens)
    assert ss["usage"].prompt_tokens > 10


def test_concurrent_settings_batch_together_and_match_alone(server, harmful):
    c = server["client"]
    asks = [(p, st) for p in harmful[:2] for st in (None, {"method": "ss", "param": 100}, {"method": "ss", "param": 200})]
    res = [None] * len(asks)
    ths = [threading.Thread(target=lambda i=i: res.__setitem__(i, ask(c, *asks[i]))) for i in range(len(asks))]
    for t in ths: t.start()
    for t in ths: t.join()
    assert max(r["batch_size"] for r in res) > 1, [r["batch_size"] for r in res]
    fct.test_eq([r["param"] for r in res], [None, 100.0, 200.0] * 2)
    alone = [ask(c, *a) for a in asks]                                # one at a time
    fct.test_eq([r["batch_size"] for r in alone], [1] * len(asks))
    fct.test_eq([same(a, b) for a, b in zip(res, alone)], [True] * len(asks))
    fct.test_ne(alone[0]["text"], alone[2]["text"])


def test_no_state_between_requests(server, harmful):
    c = server["client"]
    a = ask(c, harmful[1], {"method": "ss", "param": 120})
    ask(c, harmful[2], {"method": "ss", "param": 250}); ask(c, harmful[1])
    fct.test_eq(ask(c, harmful[1], {"method": "ss", "param": 120})["text"], a["text"])


def test_streaming_matches_the_whole_answer(server, harmful):
    c = server["client"]
    whole = ask(c, harmful[3], {"method": "ss", "param": 150}, max_tokens=20)
    chunks = list(c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": harmful[3]}], max_tokens=20,
                                            stream=True, stream_options={"include_usage": True},
                                            extra_body={"steering": {"method": "ss", "param": 150}}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    fct.test_eq(text, whole["text"])
    fct.test_eq(chunks[-1].usage.completion_tokens, whole["usage"].completion_tokens)
    comp = c.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8)
    streamed = "".join(ch.choices[0].text for ch in c.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=8, stream=True))
    fct.test_eq(streamed, comp.choices[0].text)
    fct.test_eq(comp.usage.completion_tokens, 8)


def test_bad_requests_are_400_and_do_not_affect_others(server, harmful):
    c = server["client"]
    with pytest.raises(BadRequestError, match="Unknown method"): ask(c, "Hi", {"method": "nope"})
    with pytest.raises(BadRequestError, match="holds no caa vectors"): ask(c, "Hi", {"method": "caa"})
    with pytest.raises(BadRequestError, match="outside 1..64"): ask(c, "Hi", max_tokens=65)
    with pytest.raises(BadRequestError, match="over this server's limit of 256"): ask(c, "word " * 300)
    with pytest.raises(BadRequestError, match="finite number"): ask(c, "Hi", {"method": "ss", "param": "ninety"})
    with pytest.raises(NotFoundError, match="not served here"):
        c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    good = ask(c, harmful[0], {"method": "ss", "param": 100})
    res = {}
    def run(k, f):
        try: res[k] = f()
        except Exception as e: res[k] = e
    ths = [threading.Thread(target=run, args=("good", lambda: ask(c, harmful[0], {"method": "ss", "param": 100}))),
           threading.Thread(target=run, args=("bad", lambda: ask(c, harmful[0], {"method": "ss", "param": [100]})))]
    for t in ths: t.start()
    for t in ths: t.join()
    assert isinstance(res["bad"], BadRequestError), res["bad"]
    assert same(res["good"], good)
    body = '{"model": "%s", "messages": [{"role": "user", "content": "Hi"}], "steering": {"method": "ss", "param": NaN}}' % MODEL
    r = httpx.post(server["url"] + "/chat/completions", content=body, headers={"Authorization": f"Bearer {KEY}"})
    fct.test_eq(r.status_code, 400)
    assert "finite number" in r.json()["error"]["message"]


def test_api_key_and_localhost_binding(server):
    r = httpx.post(server["url"] + "/chat/completions", json=dict(model=MODEL, messages=[{"role": "user", "content": "Hi"}]))
    fct.test_eq(r.status_code, 401)
    assert "API key" in r.json()["error"]["message"]
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=server["url"], api_key="wrong", max_retries=0).models.list()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:          # this machine's outward address (nothing is sent)
        try: s.connect(("10.255.255.255", 1)); ip = s.getsockname()[0]
        except OSError: ip = None
    if ip is None or ip.startswith("127."): pytest.skip("no non-loopback address on this machine")
    with pytest.raises(httpx.ConnectError): httpx.get(f"http://{ip}:{server['port']}/v1/models", timeout=2)


def test_bad_vectors_exit_2(vectors_dir, tmp_path):
    r = subprocess.run([str(EXE), "serve", "--model", "embedded", "--vectors", str(vectors_dir), "--port", str(free_port())],
                       capture_output=True, text=True, timeout=300)
    fct.test_eq(r.returncode, 2)
    assert "fingerprint" in r.stderr, r.stderr
    r = subprocess.run([str(EXE), "serve", "--vectors", str(tmp_path/"none"), "--port", str(free_port())],
                       capture_output=True, text=True, timeout=300)
    fct.test_eq(r.returncode, 2)
    assert "none" in r.stderr, r.stderr


def test_readme_client_example(vectors_dir, capsys):
    "The README's client example, against a server started as the README says (the frozen SS calibration in the cache)."
    block = re.search(r"## Serving a steered model.*?```python\n(.*?)```", README.read_text(), flags=re.S).group(1)
    port = free_port()
    p = start("--model", MODEL, "--vectors", vectors_dir, "--no-frozen", port=port)
    try:
        exec(compile(block.replace("8000", str(port)), "README.md", "exec"), {})
    finally: stop(p)
    out = capsys.readouterr().out.strip().split("\n")
    assert len(out) >= 2 and out[0] != out[-1], out
