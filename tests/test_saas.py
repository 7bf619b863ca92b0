"""SAAS's agent path against a real local HTTP server that speaks the OpenAI chat-completions protocol (started here, on
127.0.0.1, answering from a script of JSON replies), its errors and its documented fallback; the fitted Vectors saved and
reloaded; `steerkit calibrate` / `generate --method saas` on a local model directory."""
import json, threading, warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pytest, torch
import fastcore.test as fct
from steerkit.models import tiny_model
from steerkit.caa import ab_items
from steerkit.methods import Vectors, get_spec, method
from steerkit import saas as S
from conftest import steerkit_here

SUBS = [dict(name="takes the money now", description="Prefers a reward today over a larger one later.", prior=3),
        dict(name="impatient", description="Does not want to wait.", prior=1)]


class Agent(BaseHTTPRequestHandler):
    "POST /v1/chat/completions: a decomposition or ratings as JSON, as `server.mode` says; every request body is kept."
    def log_message(self, *a): pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        if self.server.mode == "500": return self._send(500, dict(error=dict(message="model overloaded", type="server_error")))
        user = body["messages"][-1]["content"]
        if self.server.mode == "badjson": text = "Sure! The sub-behaviours are: patience and greed."
        elif '"sub_behaviours"' in user: text = json.dumps(dict(sub_behaviours=SUBS))
        else:
            n = sum(1 for line in user.splitlines() if line.startswith("Instance "))
            text = json.dumps(dict(ratings=[[(i % 4) / 4, 1 - (i % 4) / 4] for i in range(n)]))
        self._send(200, dict(id="x", object="chat.completion", created=0, model=body["model"],
                             choices=[dict(index=0, finish_reason="stop", message=dict(role="assistant", content=text))],
                             usage=dict(prompt_tokens=1, completion_tokens=1, total_tokens=2)))

    def _send(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(b)))
        self.end_headers(); self.wfile.write(b)


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Agent)
    srv.mode, srv.requests = "good", []
    th = threading.Thread(target=srv.serve_forever, daemon=True); th.start()
    yield srv
    srv.shutdown(); srv.server_close()

def url(srv): return f"http://127.0.0.1:{srv.server_address[1]}/v1"

@pytest.fixture(scope="module")
def mt(): return tiny_model("llama")

@pytest.fixture(scope="module")
def items(): return ab_items("myopic-reward", 12)[0]

KW = dict(layer=2, progress=False)


def test_agent_decomposes_and_rates_through_http(server, mt, items):
    ag = S.OpenAIAgent(url(server), "test-agent", api_key="k", batch_size=5)
    v = S.saas_vectors(*mt, items, "myopic-reward", agent=ag, K=2, **KW)
    fct.test_eq((v.meta["agent"], v.meta["ratings_by"]), (ag.name, ag.name))
    fct.test_eq([s["name"] for s in v.meta["decomposition"]["subs"]], [s["name"] for s in SUBS])
    fct.test_close([s["prior"] for s in v.meta["decomposition"]["subs"]], [0.75, 0.25])      # renormalised
    fct.test_eq(len(server.requests), 1 + 3)                                                 # one decomposition, 12 items in batches of 5
    fct.test_eq({r["model"] for r in server.requests}, {"test-agent"})
    fct.test_eq(server.requests[0]["response_format"], {"type": "json_object"})
    assert all(r["temperature"] == 0 for r in server.requests)
    assert items[0]["matching_text"] in server.requests[1]["messages"][-1]["content"]
    # the ratings the server sent are the ones used: A_i = 0.75 r_i1 + 0.25 r_i2
    r1 = torch.tensor([(i % 5 % 4) / 4 for i in range(12)])    # each batch restarts the server's instance count
    fct.test_close(v.tensors["A"], 0.75 * r1 + 0.25 * (1 - r1), eps=1e-6)

def test_agent_from_environment(server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", url(server)); monkeypatch.setenv("STEERKIT_AGENT_MODEL", "env-model")
    ag = S.OpenAIAgent()
    fct.test_eq((ag.base_url, ag.model), (url(server), "env-model"))
    fct.test_eq(ag.decompose("myopic-reward", K=2).K, 2)

def test_agent_bad_json_is_a_clear_error_or_the_fallback(server, mt, items):
    server.mode = "badjson"
    ag = S.OpenAIAgent(url(server), "test-agent")
    with pytest.raises(S.AgentError, match="not valid JSON.*fallback='kit'"): S.saas_vectors(*mt, items, "myopic-reward", agent=ag, **KW)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        v = S.saas_vectors(*mt, items, "myopic-reward", agent=ag, fallback="kit", **KW)
    assert v.meta["agent"].startswith("kit (fallback after the agent failed"), v.meta["agent"]
    fct.test_eq(v.meta["ratings_by"], "all-MiniLM-L6-v2 similarity")
    assert any("fallback='kit'" in str(w.message) for w in ws)

def test_agent_http_error_and_unreachable(server, mt, items):
    server.mode = "500"
    with pytest.raises(S.AgentError, match="answered HTTP 500"): S.OpenAIAgent(url(server), "m").decompose("x", 2)
    port = server.server_address[1]
    server.shutdown(); server.server_close()
    with pytest.raises(S.AgentError, match="Could not reach the agent"):
        S.saas_vectors(*mt, items, "myopic-reward", agent=S.OpenAIAgent(f"http://127.0.0.1:{port}/v1", "m", timeout=5), **KW)

def test_agent_needs_a_model(monkeypatch):
    monkeypatch.delenv("STEERKIT_AGENT_MODEL", raising=False); monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with pytest.raises(S.AgentError, match="needs a model name"): S.OpenAIAgent("http://127.0.0.1:1/v1")

def test_saved_vectors_keep_the_tables(tmp_path, mt, items):
    v = get_spec("saas").fit(*mt, dict(items=items, behaviour="myopic-reward"), **KW)
    back = Vectors.load(v.save(tmp_path/"v"), mt[0])
    fct.test_eq(back.key, v.key)
    for k in S.TABLE: fct.test_eq(back.tensors[k], v.tensors[k])
    fct.test_eq(back.meta["decomposition"], v.meta["decomposition"])
    fct.test_eq([iv.layer for iv in method(back, mt[0]).ivs], [2])



def test_cli_calibrate_and_generate_saas(tmp_path):
    "`steerkit calibrate --method saas` (fitted like every method on harmful vs harmless calibration prompts, behaviour 'refusal'), then `generate`."
    d = tmp_path/"tiny"
    m, tok = tiny_model("llama"); m.save_pretrained(d); tok.save_pretrained(d)
    fz = tmp_path/"frozen"
    r = steerkit_here("calibrate", "--model", d, "--method", "saas", "--out", fz, "--n-calib", 3, "--max-new-tokens", 3)   # eligibility needs 3 pairs
    assert r.returncode == 0, r.stderr[-3000:]
    j = json.loads((fz/"vectors.json").read_text())
    fct.test_eq((j["method"], j["meta"]["behaviour"], j["meta"]["agent"]), ("saas", "refusal", "kit"))
    assert j["meta"]["param"] in get_spec("saas").grid
    p = tmp_path/"p.txt"; p.write_text("Name a fruit.\nWhat is 2+2?\n")
    out = tmp_path/"o.jsonl"
    r = steerkit_here("generate", "--model", d, "--method", "saas", "--prompts", p, "--out", out, "--calibration", fz, "--max-new-tokens", 4)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    fct.test_eq(([x["method"] for x in rows], {x["param"] for x in rows}), (["saas", "saas"], {j["meta"]["param"]}))
