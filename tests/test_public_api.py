"""The installed package's public surface: every name of every module's `__all__` resolves, and every public function and
class is called once for real on a tiny random model. The notebooks run their examples in a kernel that may hold names a
hidden cell imported; these calls run against the generated modules alone, so a name that only a notebook cell imported
shows up here as a NameError. A public callable with neither a recipe nor a skip reason fails `test_every_public_callable_is_covered`.

Everything runs on `tiny_model("llama")` (or a copy of it saved to a local directory, for the functions that take a
`load_model` name); every file, the kit's cache included, is written under pytest's temporary directories."""
import importlib, json, os, pkgutil, socket, threading, time
from functools import cached_property
from pathlib import Path
import pytest, torch
import pandas as pd
import steerkit


class _Kit:
    "`K.models` is `steerkit.models`, imported on first use (an import error fails one test, not the collection)."
    def __getattr__(self, name): return importlib.import_module(f"steerkit.{name}")

K = _Kit()
MODULES = sorted(m.name for m in pkgutil.iter_modules(steerkit.__path__) if not m.name.startswith("_"))


def public_callables() -> dict:
    "'module.name' -> object, for every function or class of the package named in a module's `__all__`."
    out = {}
    for mod in MODULES:
        m = importlib.import_module(f"steerkit.{mod}")
        for n in m.__all__:
            o = getattr(m, n)
            if callable(o) and str(getattr(o, "__module__", "")).startswith("steerkit"): out[f"{mod}.{n}"] = o
    return out


# ---------------------------------------------------------------------------------------------------------------- test 1
@pytest.mark.parametrize("mod", MODULES)
def test_every_name_in_all_resolves(mod):
    m = importlib.import_module(f"steerkit.{mod}")
    assert isinstance(getattr(m, "__all__", None), (list, tuple)) and m.__all__, f"steerkit.{mod} has no __all__"
    assert len(set(m.__all__)) == len(m.__all__), f"steerkit.{mod}.__all__ names something twice"
    missing = [n for n in m.__all__ if not hasattr(m, n)]
    assert not missing, f"steerkit.{mod}.__all__ names {missing}, which the module does not define"
    ns = {}
    exec(f"from steerkit.{mod} import *", ns)                  # what a user's star import gets
    assert set(m.__all__) <= set(ns)


# ----------------------------------------------------------------------------------------------------- shared small inputs
PROMPTS = ["Hi", "Name a fruit."]
REFUSE = ["I'm sorry, I cannot help with that.", "I can't assist with that request."]
COMPLY = ["Sure, here is how you do it.", "Of course! Here are the steps."]


def check(x, pred=None):
    "`x`, after asserting `pred(x)` (when given)."
    if pred is not None: assert pred(x), f"unexpected result: {x!r}"[:500]
    return x


def old_name(call, pred):
    "A deprecated alias: it warns (DeprecationWarning) and still does the new name's job."
    with pytest.deprecated_call(): return check(call(), pred)


def eq(x, want):
    assert x == want, f"{x!r} != {want!r}"
    return x


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


class Ctx:
    "Shared inputs, each built on first use. `tmp` (a fresh directory) and `mp` (monkeypatch) are set per test."
    def __init__(self, root: Path):
        self.root, self.tmp, self.mp = root, None, None

    def fresh(self):
        "A new copy of the tiny model, for calls that change weights."
        return K.models.tiny_model("llama")[0]

    @cached_property
    def mt(self): return K.models.tiny_model("llama")
    @property
    def m(self): return self.mt[0]
    @property
    def tok(self): return self.mt[1]
    @cached_property
    def fp(self): return K.models.model_fingerprint(self.m)
    @cached_property
    def other(self): return K.models.tiny_model("llama", seed=1)[0]

    @cached_property
    def tiny_dir(self) -> Path:
        "The tiny model saved as a local directory: a `load_model` name that needs no network."
        d = self.root/"tiny_model"
        self.m.save_pretrained(d); self.tok.save_pretrained(d)
        return d

    @cached_property
    def posneg(self):
        "Two HarmBench and two harmless prompts (the study's seed-0 split)."
        ds = K.data_sets
        hb, _ = ds.split(ds.load_prompts("harmbench"), n_calib=2, seed=0)
        hl, _ = ds.split(ds.load_prompts("harmless"), n_calib=2, seed=0)
        return list(hb["prompt"]), list(hl["prompt"])
    @property
    def pos(self): return self.posneg[0]
    @property
    def neg(self): return self.posneg[1]

    @cached_property
    def acts(self):
        c = K.capture
        return (c.capture(self.m, self.tok, self.pos, progress=False), c.capture(self.m, self.tok, self.neg, progress=False))

    @cached_property
    def plane(self): return K.directions.calibrate_plane(self.m, self.tok, self.pos, self.neg, progress=False)
    @cached_property
    def cond_plane(self):
        return K.directions.calibrate_plane(self.m, self.tok, self.pos, self.neg, sites=["resid_in"], progress=False)
    @cached_property
    def beh_plane(self):
        return K.directions.calibrate_plane(self.m, self.tok, PROMPTS, mode="response", pos_responses=REFUSE, neg_responses=COMPLY,
                                      sites=["resid_in"], progress=False)

    @cached_property
    def ss(self): return K.methods.plane_vectors(self.plane, "ss")
    @cached_property
    def ss_m(self): return K.methods.method(self.ss, self.m, grid=[0, 180])
    @cached_property
    def actadd(self):
        return K.methods.direction_vectors("actadd", self.plane.r(1, "input_layernorm"), layer=1, meta=dict(fingerprint=self.fp))
    @cached_property
    def ss_dir(self) -> Path:
        "SS vectors with a frozen angle, saved (as `steerkit calibrate` leaves them)."
        v = K.methods.plane_vectors(self.plane, "ss")
        v.meta.update(param=90.0, param_name="theta")
        return v.save(self.root/"ss_vectors")

    @cached_property
    def items(self): return K.caa.ab_items("refusal", 4)[0]
    @cached_property
    def caa_v(self): return K.caa.caa_vectors(self.m, self.tok, self.items, progress=False)
    @cached_property
    def mc_items(self): return list(K.data_sets.capability_set())[:2]

    @cached_property
    def enc(self): return K.models.encode(self.tok, K.models.chat(self.tok, PROMPTS))
    @cached_property
    def resp(self):
        "(input_ids, attention_mask, response_mask) of PROMPTS answered by COMPLY."
        md = K.models
        e = md.encode(self.tok, md.chat(self.tok, PROMPTS, responses=COMPLY))
        return e["input_ids"], e["attention_mask"], md.answer_mask(self.tok, PROMPTS, e["attention_mask"])
    @cached_property
    def logits(self):
        with torch.no_grad():
            return self.m(**self.enc, position_ids=K.models.position_ids(self.enc["attention_mask"])).logits
    @cached_property
    def greedy(self): return K.steer.greedy(self.m, self.enc, 3)

    @cached_property
    def gen_df(self): return K.generate.generate(self.m, self.tok, PROMPTS, max_new_tokens=3, cache=None, progress=False)
    @cached_property
    def scored(self):
        "Scored unsteered and SS-swept rows (a `sweep` DataFrame)."
        ev = K.evaluate
        base = ev.unsteered(self.m, self.tok, PROMPTS, max_new_tokens=3, cache=None, progress=False, reference=True)
        sw = ev.sweep(self.m, self.tok, PROMPTS, self.ss_m, max_new_tokens=3, cache=None, progress=False, reference=True)
        return pd.concat([base, sw], ignore_index=True)
    @cached_property
    def summary(self): return K.evaluate.summarize(self.scored)

    @cached_property
    def cfg(self):
        return K.study.StudyConfig(n_calib=2, n_test=2, n_pairs=4, angle_step=180, max_new_tokens=3, layers=(1, 2),
                                   actadd_grid=(1.0,), n_items=2, n_kl=2, n_everyday=2, n_coherence=4, jailbreak_actadd_grid=(-1.0,))
    @cached_property
    def data(self): return K.study.study_data(self.cfg)
    @cached_property
    def paper(self): return K.study.paper_plane(self.m, self.tok, self.data, progress=False)
    @cached_property
    def frozen(self): return K.frozen.freeze(self.m, self.tok, "actadd", self.cfg, progress=False)
    @cached_property
    def frozen_dir(self) -> Path: return self.frozen.save(self.root/"frozen_actadd")

    def prompts_file(self) -> Path:
        p = self.tmp/"prompts.txt"; p.write_text("\n".join(PROMPTS) + "\n"); return p

    def server(self, max_tokens_limit=8):
        "A `Server` of the tiny model with the saved SS vectors (close its batcher when done)."
        sv = K.serve
        cat = sv.Catalog.load(self.m, [self.ss_dir])
        return sv.Server("tiny", self.m, self.tok, cat, sv.Limits(max_prompt_tokens=256, max_tokens_limit=max_tokens_limit),
                         window=0.001, max_batch=4)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    """Shared inputs; for the module's duration the kit's cache is a temporary directory (holding only a link to the real
    cache's converted embedded model, which `tiny_model` takes its tokenizer from) and the Hugging Face hub is offline."""
    root = tmp_path_factory.mktemp("public_api")
    cache = root/"kit_cache"; cache.mkdir()
    for real in K.models.model_caches(): (cache/real.name).symlink_to(real.resolve(), target_is_directory=True)
    env = dict(STEERKIT_CACHE=str(cache), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false")
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try: yield Ctx(root)
    finally:
        for k, v in old.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v


# ------------------------------------------------------------------------------------------------------------- recipes
RECIPES = {}   # 'module.name' -> recipe(ctx, obj): one real call of the public callable `obj`

def recipe(key):
    def deco(fn): RECIPES[key] = fn; return fn
    return deco

def raises(exc, fn, *a, **kw):
    "The exception `fn(*a, **kw)` raises, which must be an `exc`."
    with pytest.raises(exc) as e: fn(*a, **kw)
    return e.value


# models ---------------------------------------------------------------------------------------------------------------
RECIPES.update({
    "models.cache_dir": lambda c, f: check(f(), lambda p: p.is_dir() and p == Path(os.environ["STEERKIT_CACHE"])),
    "models.package_dir": lambda c, f: check(f("steerkit"), lambda p: (p/"__init__.py").is_file()),
    "models.embedded_gguf_path": lambda c, f: check(f(), lambda p: p.is_file() and p.suffix == ".gguf"),
    "models.ModelUnavailableError": lambda c, f: raises(f, K.models.load_model, "steerkit-tests/no-such-model", local_files_only=True),
    "models.model_fingerprint": lambda c, f: check(f(c.m), lambda s: isinstance(s, str) and len(s) == 16 and s != f(c.other)),
    "models.AdapterError": lambda c, f: raises(f, K.models.load_adapter, c.fresh(), c.tmp),
    "models.organism_dir": lambda c, f: check(f(), lambda p: (p/"provenance.json").is_file()),
    "models.model_caches": lambda c, f: check(f(), lambda ds: "smollm2-135m-instruct" in [d.name for d in ds]
                                              and all((d/"model.safetensors").is_file() for d in ds)),
    "models.file_sha256": lambda c, f: check(f(K.models.organism_dir()/"provenance.json"), lambda s: len(s) == 64),
    "models.embedded_tokenizer": lambda c, f: check(f(), lambda t: t.padding_side == "left" and len(t) > 1000),
    "models.tiny_config": lambda c, f: check(f("qwen2", n_layers=2, d=32), lambda cf: cf.num_hidden_layers == 2),
    "models.tiny_model": lambda c, f: check(f("qwen2", n_layers=2, d=32), lambda mt: K.adapters.adapter(mt[0]).n_layers == 2),
    "models.chat": lambda c, f: check(f(c.tok, "Hi", system="Be brief.", responses=["Hello"]), lambda s: len(s) == 1 and s[0].endswith("Hello")),
    "models.encode": lambda c, f: check(f(c.tok, K.models.chat(c.tok, PROMPTS)), lambda e: e["input_ids"].shape[0] == 2),
    "models.position_ids": lambda c, f: eq(f(torch.tensor([[0, 1, 1], [1, 1, 1]])).tolist(), [[0, 0, 1], [0, 1, 2]]),
    "models.last_logits": lambda c, f: check(f(c.m, **c.enc, position_ids=K.models.position_ids(c.enc["attention_mask"])),
                                             lambda lg: torch.allclose(lg, c.logits[:, -1], atol=1e-5)),
    "models.answer_mask": lambda c, f: check(f(c.tok, PROMPTS, c.resp[1]), lambda a: a.dtype == torch.bool and a.any(1).all()),
    "models.answer_rows": lambda c, f: check(f(c.tok, PROMPTS, COMPLY), lambda rs: [sum(m) for _, m in rs] == c.resp[2].sum(1).tolist()),
    "models.rtol": lambda c, f: check(f(), lambda r: 0 < r < 1e-3),
    "models.rel_gap": lambda c, f: eq(f(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5])), pytest.approx(0.2)),
    "models.available_devices": lambda c, f: check(f(), lambda d: d[0] == "cpu" and len(d) == 1 + torch.cuda.device_count() + (d[-1] == "mps")),
    "models.resolve_device": lambda c, f: eq(f("cpu"), "cpu"),
    "models.resolve_dtype": lambda c, f: eq((f("auto", "cpu"), f("bf16")), (torch.float32, torch.bfloat16)),
    "models.model_device": lambda c, f: eq(f(c.m), torch.device("cpu")),
    "models.model_placement": lambda c, f: eq(f(c.m), dict(device="cpu", dtype="float32", device_map=None)),
    "models.numerics_tag": lambda c, f: eq((f(c.m), f(K.models.place_model(c.fresh(), "cpu", "bf16"))), ("float32-cpu", "bfloat16-cpu")),
    "models.place_model": lambda c, f: check(f(c.fresh(), "cpu", "bfloat16"), lambda m: m.config.steerkit_placement["dtype"] == "bfloat16"
                                             and next(m.parameters()).dtype == torch.bfloat16 and K.models.model_fingerprint(m) == c.fp),
})

@recipe("models.load_model")
def _(c, f):
    m, tok = f(str(c.tiny_dir))
    assert K.models.model_fingerprint(m) == c.fp and tok.padding_side == "left"
    return m

def _lora(model, r=2):
    "LoRA tensors for the q_proj of layer 0 of `model`."
    g = torch.Generator().manual_seed(0)
    d = model.config.hidden_size
    n = "model.layers.0.self_attn.q_proj"
    return {f"{n}.lora_A": torch.randn(r, d, generator=g), f"{n}.lora_B": torch.randn(d, r, generator=g)}

@recipe("models.merge_lora")
def _(c, f):
    m = c.fresh(); w = m.model.layers[0].self_attn.q_proj.weight.clone()
    eq(f(m, _lora(m), 0.5), 1)
    assert not torch.equal(w, m.model.layers[0].self_attn.q_proj.weight)

@recipe("models.load_adapter")
def _(c, f):
    from safetensors.torch import save_file
    m = c.fresh(); d = c.tmp/"adapter"; d.mkdir()
    save_file(_lora(m), str(d/"adapter.safetensors"))
    (d/"provenance.json").write_text(json.dumps(dict(base="tiny", base_fingerprint=K.models.model_fingerprint(m),
        adapter_sha256=K.models.file_sha256(d/"adapter.safetensors"), recipe=dict(r=2, alpha=4))))
    prov = f(m, d)
    assert prov["recipe"]["r"] == 2 and m.config.steerkit_adapter["recipe"]["alpha"] == 4
    return prov

# adapters -------------------------------------------------------------------------------------------------------------
RECIPES.update({
    "adapters.UnsupportedArchitectureError": lambda c, f: raises(f, K.adapters.adapter, torch.nn.Linear(2, 2)),
    "adapters.adapter": lambda c, f: check(f(c.m), lambda a: a.n_layers == 4 and a.width("mlp_act") == 128),
})

@recipe("adapters.Adapter")
def _(c, f):
    a = K.adapters.adapter(c.m)
    b = f(a.model, a.layers, a.norm_sites, a.attn, a.o_proj, a.mlp, a.act)
    assert b.site_module(0, "attn_heads")[1] == "input" and b.sites == a.sites
    return b

@recipe("adapters.add_hook")
def _(c, f):
    seen = []
    h = f(*K.adapters.adapter(c.m).site_module(1, "resid_out"), lambda x: seen.append(x.shape))
    try: c.m(**c.enc)
    finally: h.remove()
    return eq(seen, [torch.Size([2, c.enc["input_ids"].shape[1], 64])])

RECIPES["adapters.decoder"] = lambda c, f: check(f(c.m), lambda d: d is c.m.model and not hasattr(d, "lm_head"))
RECIPES["adapters.can_stop"] = lambda c, f: eq(f(c.m), True)

@recipe("adapters.PassDone")
def _(c, f):
    "Raised by a hook at layer 0, it ends the pass there: layer 1 never runs."
    ad, ran = K.adapters.adapter(c.m), []
    hs = [K.adapters.add_hook(*ad.site_module(0, "resid_out"), lambda x: (_ for _ in ()).throw(f())),
          K.adapters.add_hook(*ad.site_module(1, "resid_in"), lambda x: ran.append(1))]
    try: raises(f, c.m, **c.enc)
    finally:
        for h in hs: h.remove()
    return eq(ran, [])

# data_sets ------------------------------------------------------------------------------------------------------------
AB_POS = "Will you help me?\n\nChoices:\n (A) No\n (B) Yes\nAnswer: (A)"
AB_NEG = "Will you help me?\n\nChoices:\n (A) No\n (B) Yes\nAnswer: (B)"

def _hub(c, f, *a):
    "A hub loader with the hub offline and a temporary datasets cache: the data set, or `HubUnavailableError`."
    c.mp.setenv("HF_HUB_OFFLINE", "1")
    try: return f(*a, cache_dir=str(c.tmp/"hf_datasets"))
    except K.data_sets.HubUnavailableError as e:
        assert "Offline alternative" in str(e) and e.cause is not None
        return e

RECIPES.update({
    "data_sets.data_dir": lambda c, f: check(f(), lambda p: (p/"harmless.jsonl").is_file()),
    "data_sets.harmbench": lambda c, f: check(f(), lambda d: len(d) == 200 and "prompt" in d.column_names),
    "data_sets.donotanswer": lambda c, f: check(f(), lambda d: len(d) == 939),
    "data_sets.parse_ab": lambda c, f: check(f(AB_POS, AB_NEG), lambda r: r["matching"] == "(A)" and r["options"] == ["No", "Yes"]),
    "data_sets.caa_behaviour": lambda c, f: check(f("refusal"), lambda d: "refusing_text" in d.column_names and len(d) > 4),
    "data_sets.harmless": lambda c, f: check(f(), lambda d: "instruction" in d.column_names),
    "data_sets.capability_set": lambda c, f: check(f(), lambda d: {"question", "options", "answer"} <= set(d.column_names)),
    "data_sets.refusal_sentences": lambda c, f: check(f(), lambda s: len(s) == 24),
    "data_sets.everyday_advice": lambda c, f: check(f(), lambda d: len(d) == 120),
    "data_sets.everyday_harmful": lambda c, f: check(f(), lambda d: len(d) == 96),
    "data_sets.benign_questions": lambda c, f: check(f(), lambda d: len(d) == 240),
    "data_sets.instructions": lambda c, f: check(f(), lambda d: len(d) == 384 and set(d["kind"]) == {"harmful", "harmless"}),
    "data_sets.split": lambda c, f: check(f(K.data_sets.harmless(), n_calib=3, n_test=2), lambda ct: (len(ct[0]), len(ct[1])) == (3, 2)),
    "data_sets.split_record": lambda c, f: check(f(*K.data_sets.split(K.data_sets.harmless(), n_calib=3, n_test=2), name="h"),
                                                lambda r: r["n_calib"] == 3 and len(r["test_index"]) == 2),
    "data_sets.HubUnavailableError": lambda c, f: check(f("offline", cause=OSError("x")), lambda e: isinstance(e.cause, OSError)),
    "data_sets.load_prompts": lambda c, f: check(f("harmless"), lambda d: "prompt" in d.column_names),
    "data_sets.hub_dataset": lambda c, f: _hub(c, f, "steerkit-tests/no-such-dataset"),
    "data_sets.advbench": lambda c, f: _hub(c, f),
    "data_sets.alpaca": lambda c, f: _hub(c, f),
    "data_sets.tiny_benchmarks": lambda c, f: _hub(c, f, "mmlu"),
})

@recipe("data_sets.hub_offline")
def _(c, f):
    for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"): c.mp.delenv(k, raising=False)
    assert f() is False
    c.mp.setenv("HF_DATASETS_OFFLINE", "1")
    return eq(f(), True)

@recipe("data_sets.hub_reachable")
def _(c, f):
    "Probes a closed local port: no network."
    for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"): c.mp.delenv(k, raising=False)
    c.mp.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    return eq(f(timeout=1.0), False)

# capture --------------------------------------------------------------------------------------------------------------
RECIPES.update({
    "capture.n_post_instruction": lambda c, f: check(f(c.tok), lambda n: isinstance(n, int) and n > 0),
    "capture.site_key": lambda c, f: eq(f(3, "resid_in"), "L3.resid_in"),
    "capture.parse_site_key": lambda c, f: eq(f("L12.input_layernorm"), (12, "input_layernorm")),
    "capture.capture": lambda c, f: check(f(c.m, c.tok, PROMPTS, sites=["resid_in", "mlp_act"], layers=[0, 3], progress=False),
                                          lambda a: a.at(3, "mlp_act").shape == (2, 128) and a.layers == [0, 3]),
    "capture.padding_gap": lambda c, f: check(f(c.m, c.tok, PROMPTS, sites=["resid_out"]), lambda g: 0 <= g < 1e-3),
    "capture.capture_throughput": lambda c, f: check(f(c.m, c.tok, PROMPTS, batch_size=2), lambda d: d["capture_prompts_per_s"] > 0),
})

@recipe("capture.capture_pairs")
def _(c, f):
    "Two answers to one question, read at the last token: the question runs once, the values are two captures'."
    kw = [dict(prompts=PROMPTS, responses=r) for r in (REFUSE, COMPLY)]
    got = f(c.m, c.tok, *kw, sites=["resid_out"], layers=[1], progress=False)
    for g, x in zip(got, kw):
        ref = K.capture.capture(c.m, c.tok, sites=["resid_out"], layers=[1], progress=False, **x)
        assert g.meta == ref.meta and K.models.rel_gap(g.at(1, "resid_out"), ref.at(1, "resid_out")) < 1e-4
    return got

@recipe("capture.Activations")
def _(c, f):
    a = f({"L0.resid_in": torch.ones(2, 4), "L2.resid_in": torch.zeros(2, 4)}, meta=dict(model="x"))
    a.save(c.tmp/"a.safetensors")
    b = f.load(c.tmp/"a.safetensors")
    assert b.meta == dict(model="x") and b.layers == [0, 2] and b.sites == ["resid_in"] and torch.equal(b.at(0, "resid_in"), torch.ones(2, 4))
    return b

# operators ------------------------------------------------------------------------------------------------------------
def _h(): return torch.randn(3, 64, generator=torch.Generator().manual_seed(0))
def _plane():
    g = torch.Generator().manual_seed(1)
    return K.operators.orthonormal_plane(torch.randn(64, generator=g), torch.randn(64, generator=g))
def _norms(x): return x.norm(dim=-1)

RECIPES.update({
    "operators.unit": lambda c, f: check(f(torch.tensor([3.0, 4.0])), lambda u: torch.allclose(u, torch.tensor([0.6, 0.8]))),
    "operators.orthonormal_plane": lambda c, f: check(f(torch.tensor([1.0, 0, 0]), torch.tensor([1.0, 1, 0])),
                                                      lambda p: torch.allclose(p[1], torch.tensor([0.0, 1, 0]))),
    "operators.plane_coords": lambda c, f: check(f(_h(), *_plane()), lambda cc: cc[0].shape == (3,)),
    "operators.ss_rotate": lambda c, f: check(f(_h(), *_plane(), 90), lambda y: torch.allclose(_norms(y), _norms(_h()), rtol=1e-4)),
    "operators.sas": lambda c, f: check(f(_h(), *_plane(), 90), lambda y: y.shape == (3, 64)),
    "operators.aas": lambda c, f: check(f(_h(), *_plane(), 90), lambda y: y.shape == (3, 64)),
    "operators.add": lambda c, f: check(f(_h(), torch.ones(64), 2.0), lambda y: torch.allclose(y, _h() + 2)),
    "operators.actadd": lambda c, f: check(f(_h(), torch.ones(64), -1.0), lambda y: torch.allclose(y, _h() - 1)),
    "operators.dirabl": lambda c, f: check(f(_h(), _plane()[0]), lambda y: (y @ _plane()[0]).abs().max() < 1e-4),
    "operators.scale_units": lambda c, f: check(f(_h(), torch.ones(64), 1.0), lambda y: torch.allclose(y, 2 * _h())),
    "operators.make_operator": lambda c, f: check(f("ss", b1=_plane()[0], b2=_plane()[1], theta=180)(_h()), lambda y: y.shape == (3, 64)),
    "operators.norm_ratio": lambda c, f: check(f(_h(), 2 * _h()), lambda r: torch.allclose(r, torch.full((3,), 2.0))),
    "operators.inplane_angle": lambda c, f: check(f(_h(), *_plane()), lambda a: ((a >= 0) & (a < 360)).all()),
})

@recipe("operators.OpSpec")
def _(c, f):
    s = f(K.operators.dirabl, ("u",), None)
    return check(K.operators.Operator("dirabl", s, dict(u=_plane()[0]))(_h()), lambda y: y.shape == (3, 64))

@recipe("operators.Operator")
def _(c, f):
    b1, b2 = _plane()
    op = f("ss", K.operators.OPERATORS["ss"], dict(b1=b1, b2=b2), 90.0)
    assert op.param_name == "theta"
    return check(op(_h()), lambda y: torch.allclose(y, K.operators.ss_rotate(_h(), b1, b2, 90.0)))

@recipe("operators.plot_norm_ratio")
def _(c, f):
    import matplotlib.pyplot as plt
    fig = f(_h(), *_plane(), thetas=range(0, 360, 90), r=torch.ones(64))
    assert len(fig.axes[0].lines) == 4
    plt.close("all")
    return fig

# directions -----------------------------------------------------------------------------------------------------------
RECIPES.update({
    "directions.candidates": lambda c, f: check(f(*c.acts), lambda kd: 0 < len(kd[0]) == kd[1].shape[0] <= 8   # L0.input_layernorm:
                                                 and "L0.input_layernorm" not in kd[0]),              # same template token
    "directions.pick_b1": lambda c, f: check(f(K.directions.candidates(*c.acts)[1]), lambda km: 0 <= km[0] < 8),
    "directions.pick_b2": lambda c, f: check(f(D := K.directions.candidates(*c.acts)[1], D[0]), lambda b2: abs(float(b2 @ D[0])) < 1e-4),
    "directions.site_stats": lambda c, f: check(f(*c.acts, c.plane.b1), lambda s: len(s) == 8 and "passes" in s),
    "directions.discriminative_layers": lambda c, f: eq(f(pd.DataFrame(dict(layer=[0, 0, 1], passes=[True, False, True]))), [1]),
    "directions.plane_from_acts": lambda c, f: check(f(*c.acts, dict(fingerprint=c.fp)), lambda p: p.R.shape == (8, 64)),
    "directions.calibrate_plane": lambda c, f: check(f(c.m, c.tok, PROMPTS, mode="response", pos_responses=REFUSE, neg_responses=COMPLY,
                                                 layers=[1, 2], progress=False), lambda p: p.meta["positions"] == "mean_response"),
})

@recipe("directions.Plane")
def _(c, f):
    p = c.plane
    q = f(p.b1, p.b2, p.L_disc, p.sites, p.stats, p.cos, p.k_star, dict(p.meta), p.R)
    q.save(c.tmp/"plane")
    r = f.load(c.tmp/"plane", c.m)
    assert r.k_star == p.k_star and torch.equal(r.r(1, "input_layernorm"), p.r(1, "input_layernorm"))
    return r

@recipe("directions.PlaneMismatchError")
def _(c, f):
    c.plane.save(c.tmp/"plane")
    return raises(f, K.directions.Plane.load, c.tmp/"plane", c.other)

@recipe("directions.plot_layers")
def _(c, f):
    import matplotlib.pyplot as plt
    fig = f(c.plane)
    assert fig.axes and fig.axes[0].lines
    plt.close("all")
    return fig

# steer ----------------------------------------------------------------------------------------------------------------
def _ss_ivs(c): return K.steer.interventions(K.operators.make_operator("ss", b1=c.plane.b1, b2=c.plane.b2), [1, 2], "input_layernorm")

RECIPES.update({
    "steer.Intervention": lambda c, f: check(f(1, "resid_in", lambda h, p: h), lambda iv: iv.layer == 1),
    "steer.interventions": lambda c, f: check(f(lambda h, p: h, [0, 1], ["resid_in", "mlp_out"]), lambda ivs: len(ivs) == 4),
    "steer.greedy": lambda c, f: check(f(c.m, c.enc, 3), lambda tl: tl[0].shape == (2, 3) and tl[1].shape[:2] == (2, 3)),
    "steer.decode": lambda c, f: check(f(c.m, c.enc, 3, [int(c.greedy[0][0, 0])]),    # row 0 ends at its first token
                                       lambda tl: tl[0].shape[0] == 2 and tl[0][0, 0] == c.greedy[0][0, 0]
                                       and bool((tl[1][0, 1:] == 0).all())),
    "steer.Agreement": lambda c, f: check(f(True, 0.0, 1e-3, 4, 4, 0), lambda a: bool(a)),
    "steer.greedy_agreement": lambda c, f: check(f(c.greedy, c.greedy), lambda a: a.ok and a.max_gap == 0 and a.compared == 6),
    "steer.cache_equivalence": lambda c, f: check(f(c.m, c.enc, _ss_ivs(c), param=90, max_new_tokens=3), lambda a: a.total == 6),
    "steer.batch_vs_alone": lambda c, f: check(f(c.m, c.tok, PROMPTS, _ss_ivs(c), params=[0, 90], order=[1, 0], max_new_tokens=2),
                                               lambda a: a.total == 4),
    "steer.per_row_gap": lambda c, f: check(f(c.m, c.tok, "Hi", _ss_ivs(c), [0, 180], max_new_tokens=2), lambda a: a.total == 4),
})

def _steered_logits(c, make):
    with make(c.m, _ss_ivs(c), param=[0.0, 180.0]) as s:
        out = c.m(**c.enc, position_ids=K.models.position_ids(c.enc["attention_mask"])).logits
    assert s.calls == 1 and not s.handles
    assert not torch.allclose(out, c.logits)
    return out

RECIPES["steer.Steering"] = lambda c, f: _steered_logits(c, f)
RECIPES["steer.steering"] = lambda c, f: _steered_logits(c, f)
RECIPES["steer.first_steered"] = lambda c, f: eq(f(c.m, _ss_ivs(c)[::-1]), 1)

@recipe("steer.layer_inputs")
def _(c, f):
    "The hidden states entering layer 2, run from there with layers 0 and 1 skipped: the whole model's logits."
    pos = K.models.position_ids(c.enc["attention_mask"])
    H = f(c.m, [2], **c.enc, position_ids=pos)
    with torch.no_grad(), K.adapters.adapter(c.m).skipping(2):
        out = c.m(inputs_embeds=H[2], attention_mask=c.enc["attention_mask"], position_ids=pos).logits
    assert list(H) == [2] and torch.allclose(out, c.logits, atol=1e-5)
    return H

RECIPES["steer.steers_before_last"] = lambda c, f: eq([f(p) for p in K.steer.PHASES], [True, True, False, False, False])

# generate -------------------------------------------------------------------------------------------------------------
RECIPES.update({
    "generate.response_mask": lambda c, f: eq(f(torch.tensor([[5, 2, 7], [5, 6, 7]]), [2]).tolist(), [[True, True, False], [True] * 3]),
    "generate.greedy_self_ppl": lambda c, f: check(f(c.greedy[1], c.greedy[0], torch.ones(2, 3)), lambda p: p.shape == (2,) and (p >= 1).all()),
    "generate.step_stats": lambda c, f: check(f(c.greedy[1], c.greedy[0]), lambda s: s.shape == (2, 3, 3) and (s[..., 0] <= 0).all()
                                              and (s[..., 1] >= 0).all() and (s[..., 2] > 0).all()),
    "generate.self_ppl_from": lambda c, f: check(f(K.generate.step_stats(c.greedy[1], c.greedy[0]), torch.ones(2, 3)), lambda p: torch.equal(
                                                 p, K.generate.greedy_self_ppl(c.greedy[1], c.greedy[0], torch.ones(2, 3)))),
    "generate.tie_margin_from": lambda c, f: check(f(K.generate.step_stats(c.greedy[1], c.greedy[0]), torch.ones(2, 3, dtype=torch.bool)),
                                                   lambda t: torch.equal(t, K.generate.tie_margin(c.greedy[1], torch.ones(2, 3, dtype=torch.bool)))),
    "generate.tie_margin": lambda c, f: check(f(c.greedy[1], torch.ones(2, 3, dtype=torch.bool)), lambda t: t.shape == (2,) and (t >= 0).all()),
    "generate.row_key": lambda c, f: check(f("fp", "ss", 90.0, "Hi", dict(max_new_tokens=3)), lambda k: len(k) == 24 and k != f("fp", "ss", 0.0, "Hi", {})),
    "generate.generate": lambda c, f: check(f(c.m, c.tok, PROMPTS, c.ss_m.ivs, params=90, method=c.ss_m.key, max_new_tokens=3,
                                              cache=c.tmp/"gen.jsonl", progress=False),
                                            lambda d: len(d) == 2 and d.attrs["generated"] == 2 and (c.tmp/"gen.jsonl").is_file()),
    "generate.same_text": lambda c, f: check(f(c.gen_df, c.gen_df), lambda s: s.all()),
    "generate.cached_values": lambda c, f: check(f("lens", "fp", ["ab", "c", "ab"], lambda x: [len(s) for s in x], c.tmp/"cached_values.jsonl"),
                                                 lambda v: v == [2, 1, 2] and len((c.tmp/"cached_values.jsonl").read_text().splitlines()) == 2),
})

@recipe("generate.GenCache")
def _(c, f):
    g = f(c.tmp/"cache.jsonl")
    g.add([dict(key="a", response="x"), dict(key="b", response="y")])
    h = f(c.tmp/"cache.jsonl")
    assert "a" in h and h["b"]["response"] == "y" and h.skipped == 0
    return h

# metrics --------------------------------------------------------------------------------------------------------------
def _ppl(c, f):
    p = f(c.m, *c.resp, batch_size=1)
    assert p.shape == (2,) and (p > 1).all()
    return p

RECIPES.update({
    "metrics.refusal_score": lambda c, f: eq([f(t) for t in REFUSE + COMPLY + ["I\u2019m sorry"]], [1, 1, 0, 0, 1]),
    "metrics.compliance_score": lambda c, f: eq([f(t) for t in REFUSE + COMPLY], [0, 0, 1, 1]),
    "metrics.language_consistency": lambda c, f: eq([f("Hello"), f("\u4f60\u597d"), f("")], [1.0, 0.0, 1.0]),
    "metrics.compression_ratio": lambda c, f: check(f("ab" * 100), lambda r: 0 < r < f("The quick brown fox jumps.")),
    "metrics.ngram_repetition": lambda c, f: eq(f("a b a b a b", n=2), pytest.approx(0.6)),
    "metrics.text_metrics": lambda c, f: check(f(REFUSE + COMPLY), lambda d: d.refusal.tolist() == [1, 1, 0, 0]),
    "metrics.sequence_logprobs": lambda c, f: check(f(c.logits, c.enc["input_ids"], c.enc["attention_mask"] * (torch.arange(c.logits.shape[1]) > 0)),
                                                    lambda sc: sc[0].shape == (2,) and (sc[0] < 0).all() and (sc[1] > 0).all()),
    "metrics.response_logprobs": lambda c, f: check(f(c.m, *c.resp), lambda sc: (sc[0] < 0).all() and (sc[1] > 0).all()),
    "metrics.self_ppl": _ppl,
    "metrics.perplexity": lambda c, f: check(f(torch.tensor([-2.0, 0.0]), torch.tensor([1, 0])), lambda p: abs(p[0] - 7.389) < 1e-3 and p[1].isnan()),
    "metrics.prefix_logprobs": lambda c, f: check(f(c.m, K.models.answer_rows(c.tok, PROMPTS * 2, COMPLY + REFUSE), batch_size=1),
                                                  lambda sc: sc[1][:2].tolist() == c.resp[2].sum(1).tolist()
                                                  and (sc[0][:2] - K.metrics.response_logprobs(c.m, *c.resp)[0]).abs().max() < 1e-3),
    "metrics.mc_rows": lambda c, f: check(f(c.tok, "2+2=", ["4", "five"]), lambda rs: len(rs) == 2 and rs[0][0][:-sum(rs[0][1])] == rs[1][0][:-sum(rs[1][1])]),
    "metrics.ppl_violation": lambda c, f: eq((f([1.0, 3.5]), f([1.0, float("nan")])), (True, False)),
    "metrics.next_token_kl": lambda c, f: check(f(c.logits, c.logits.flip(0), mask=c.enc["attention_mask"]), lambda k: k.shape == (2,) and (k > 0).all()),
    "metrics.mc_option_logprobs": lambda c, f: check(f(c.m, c.tok, "2+2=", ["4", "five"]), lambda sc: sc[1].tolist()[0] >= 1),
    "metrics.mc_predict": lambda c, f: check(f(c.m, c.tok, "2+2=", ["4", "five", "6"], norm=True), lambda i: i in (0, 1, 2)),
    "metrics.mc_accuracy": lambda c, f: check(f(c.m, c.tok, c.mc_items, prompt_fn=K.evaluate.mc_prompt(c.tok), sep=""), lambda a: 0 <= a <= 1),
    "metrics.letter_token_id": lambda c, f: check(f(c.tok, "A"), lambda i: isinstance(i, int) and i != f(c.tok, "B")),
    "metrics.caa_ab_prob": lambda c, f: check(f(c.logits[:, -1], c.tok, ["(A)", "B"]), lambda p: p.shape == (2,) and ((p > 0) & (p < 1)).all()),
})

# methods --------------------------------------------------------------------------------------------------------------
def _pn(c): return dict(pos=c.pos, neg=c.neg)

RECIPES.update({
    "methods.VectorsError": lambda c, f: raises(f, K.methods.method, c.ss, c.other),
    "methods.register": lambda c, f: check(f(K.methods.get_spec("ss")), lambda s: K.methods.REGISTRY["ss"] is s),
    "methods.get_spec": lambda c, f: check(f("caa"), lambda s: s.op == "add" and s.phase == "after_prompt"),
    "methods.method_names": lambda c, f: check(f(), lambda n: {"ss", "sas", "aas", "actadd", "dirabl", "caa", "austeer", "sadi", "saas"} <= set(n)),
    "methods.method": lambda c, f: check(f(c.ss, c.m, layers=c.ss.layers[:1], grid=[90], name="ss-1"),
                                         lambda mm: mm.name == "ss-1" and mm.grid == [90] and len(mm.ivs) == len(c.ss.sites)),
    "methods.plane_vectors": lambda c, f: check(f(c.plane, "sas"), lambda v: v.layers == [0, 1, 2, 3] and v.method == "sas"),
    "methods.direction_vectors": lambda c, f: check(f("dirabl", torch.ones(64), layers=range(4)), lambda v: len(v.placement) == 12),
    "methods.residual_direction": lambda c, f: check(f(c.m, c.tok, c.pos, c.neg, 1, progress=False), lambda r: r.shape == (64,)),
    "methods.fit_plane": lambda c, f: check(f(c.m, c.tok, _pn(c), "aas", progress=False), lambda v: v.method == "aas"),
    "methods.fit_direction": lambda c, f: check(f(c.m, c.tok, _pn(c), "actadd", layer=2, progress=False), lambda v: v.layers == [2]),
    "methods.steered_dims": lambda c, f: eq(f(K.methods.direction_vectors("dirabl", torch.ones(64), layers=[0, 1])), 6),
})

@recipe("methods.Vectors")
def _(c, f):
    v = f("actadd", dict(r=torch.ones(64)), [dict(layer=1, site="resid_in", dirs=dict(r="r"))], dict(fingerprint=c.fp))
    d = v.save(c.tmp/"v")
    w = f.load(d, c.m)
    assert w.key == v.key and w.layers == [1] and w.sites == ["resid_in"]
    return w

@recipe("methods.Spec")
def _(c, f):
    s = f("test-public-api", "actadd", "a", (1.0,))
    ivs = s.place(K.methods.direction_vectors("actadd", torch.ones(64), layer=2))
    return check(ivs, lambda x: len(x) == 1 and x[0].layer == 2)

@recipe("methods.Method")
def _(c, f):
    mm = f("custom", c.ss_m.ivs, "theta", [90], "custom:1", "all", c.ss)
    df = K.evaluate.sweep(c.m, c.tok, ["Hi"], mm, max_new_tokens=2, cache=None, progress=False)
    return check(df, lambda d: d.method.tolist() == ["custom"] and d.value.tolist() == [90])

_TXT = [dict(positive=f"I loved the {w}.", negative=f"I hated the {w}.") for w in ("walk", "film", "meal", "trip")]

RECIPES.update({
    "methods.Contrast": lambda c, f: check(f.of(_TXT), lambda x: x.kind == "texts" and len(x) == 4 and len(x.split(2)[1]) == 2),
    "methods.Setting": lambda c, f: check(f("k", 10), lambda s: s.rule == "fixed" and s.default == 10),
    "methods.builtin_modules": lambda c, f: check(f(), lambda t: {"steerkit.caa", "steerkit.sadi", "steerkit.austeer", "steerkit.saas"} <= set(t)),
    "methods.method_ref": lambda c, f: eq(f("caa"), "caa"),
    "methods.method_table": lambda c, f: check(f(), lambda d: {"ss", "none", "sadi-fixed"} <= set(d.name) and (d.set_index("name").reads["austeer"] == "raw")),
    "methods.mean_difference": lambda c, f: check(f(c.m, c.tok, _TXT, 1, "resid_out", progress=False), lambda r: r.shape == (64,)),
    "methods.fit_plane_of": lambda c, f: check(f(c.m, c.tok, _pn(c), progress=False), lambda p: p.b1.shape == (64,)),
    "methods.fit_none": lambda c, f: check(f(c.m, c.tok), lambda v: v.method == "none" and v.placement == []),
    "metrics.bootstrap_ci": lambda c, f: check(f([1.0, 0.0, 1.0, 1.0]), lambda d: d["lo"] <= d["mean"] == 0.75 <= d["hi"]),
    "data_sets.sentiment_pairs": lambda c, f: check(f(), lambda r: len(r) == 128 and {"positive", "negative", "topic"} <= set(r[0])),
    "data_sets.neutral_requests": lambda c, f: check(f(), lambda d: len(d) == 112 and "prompt" in d.column_names),
    "saas.saas_items": lambda c, f: check(f(K.methods.Contrast.of(_TXT)), lambda r: len(r) == 4 and r[0]["matching_text"] == "I loved the walk."),
    "saas.described": lambda c, f: check(f("cheerful answers"), lambda d: d.K == 1 and d.subs[0]["description"] == "cheerful answers"),
    "pairs.read_pairs": lambda c, f: check(f(_write_pairs(c)), lambda x: x.kind == "texts" and len(x) == 4 and "sha256" in x.meta),
    "pairs.answer_logprobs": lambda c, f: check(f(c.m, c.tok, ["Hi"], ["Hello there."]), lambda a: a.shape == (1, 1) and a[0, 0] < 0),
    "pairs.pair_effects": lambda c, f: check(f(c.m, c.tok, _TXT), lambda a: a.shape == (1, 4)),
    "pairs.neutral_split": lambda c, f: check(f(4, 8), lambda t: len(t[0]) == 4 and len(t[1]) == 8 and not set(t[0]) & set(t[1])),
    "pairs.freeze_pairs": lambda c, f: check(f(c.m, c.tok, "caa", _TXT, neutral=["Hi."], n_fit=2, grid=[0.0, 1.0], max_new_tokens=2, progress=False),
                                             lambda v: v.meta["param"] in (0.0, 1.0) and v.meta["n_held"] == 2),
    "pairs.sentiment": lambda c, f: check(f(["A wonderful day!", "An awful day."]), lambda s: s[0] > 0 > s[1]),
    "pairs.topic_similarity": lambda c, f: check(f(["Waves broke on the beach.", "I filed my taxes."]), lambda s: s[0] > s[1]),
    "pairs.mentions": lambda c, f: eq(f(["The sea was calm.", "A calm street."]).tolist(), [1.0, 0.0]),
    "pairs.vectors_cosine": lambda c, f: check(f(c.ss, c.ss), lambda x: abs(x - 1) < 1e-6),
    "pairs.TextScorer": lambda c, f: check(f(lambda ts: [float(len(t)) for t in ts], {"compression_ratio_min": 0.0, "repetition_4gram_max": 1.0,
                                             "language_consistency_min": 0.0}, max_new_tokens=2).score(c.m, c.tok, ["Hi."]), lambda d: d["n"] == 1 and d["coherent"] == 1.0),
    "data_sets.topic_pairs": lambda c, f: check(f(), lambda r: len(r) == 112 and {"positive", "negative", "frame"} <= set(r[0])),
    "data_sets.topic_requests": lambda c, f: check(f(), lambda d: len(d) == 96 and "prompt" in d.column_names),
})

_ROWS = pd.DataFrame(dict(method=["a"] * 4 + ["b"] * 4, prompt=list("wxyz") * 2, ok=[1, 1, 0, 1, 0, 0, 0, 1]))
_PROV = dict(model="toy", fingerprint="", adapter_sha256="", commit="0123456789abcdef0123456789abcdef01234567", dirty=False, command="pytest")

def _written(c, name, write):
    p = c.tmp/name; write(p); return K.reproduce.read_provenance(p)

RECIPES.update({
    "metrics.ci_table": lambda c, f: check(f(_ROWS, "method", ["ok"]), lambda t: t.ok.tolist() == [0.75, 0.25] and (t.ok_lo <= t.ok).all()),
    "metrics.paired_differences": lambda c, f: check(f(_ROWS, "method", "a", ["ok"]), lambda d: d["diff"].tolist() == [-0.5] and d.n_items.tolist() == [4]),
    "metrics.with_ci": lambda c, f: eq(f(pd.DataFrame(dict(x=[0.5], x_lo=[0.25], x_hi=[0.75]))).x.tolist(), ["0.500 [0.250, 0.750]"]),
    "metrics.split_ci": lambda c, f: check(f(_ROWS.assign(split="test"), "method", {"test": {"ok": "rate"}}), lambda t: t.rate.tolist() == [0.75, 0.25] and (t.rate_lo <= t.rate).all()),
    "metrics.topicality": lambda c, f: check(f(["Bake bread."] * 2, ["Knead the dough and bake it.", ""]), lambda s: s[0] > 0.3 and s[1] == 0.0),
    "metrics.cohen_kappa": lambda c, f: eq(f([1, 1, 0, 0], [1, 0, 1, 0]), 0.0),
    "metrics.mc_correct": lambda c, f: check(f(c.m, c.tok, c.mc_items, prompt_fn=K.evaluate.mc_prompt(c.tok), sep=""), lambda r: len(r) == len(c.mc_items) and set(r) <= {0, 1}),
    "evaluate.on_topic": lambda c, f: eq(f(pd.DataFrame(dict(topicality=[0.2, 0.9])), dict(topicality_min=0.5)).tolist(), [False, True]),
    "evaluate.answer_class": lambda c, f: check(f(c.scored.assign(topicality=0.0, refusal=0), dict(K.evaluate.coherence_thresholds(c.scored), topicality_min=0.5)),
                                                lambda s: set(s) <= {"deflects", "broken"} and len(s) == len(c.scored)),
    "evaluate.topicality_threshold": lambda c, f: eq(f([0.1, 0.2, 0.6, 0.8], [False, False, True, True]), pytest.approx(0.4)),
    "data_sets.reserve": lambda c, f: check(f(K.data_sets.load_prompts("harmless"), 5), lambda rr: len(rr[0]) == 5 and len(rr[0]) + len(rr[1]) == len(K.data_sets.harmless())),
    "data_sets.coherence_prompts": lambda c, f: check(f(), lambda p: len(p) == 120 == len(set(p))),
    "data_sets.cli_demo_dir": lambda c, f: check(f(), lambda d: len(list(d.glob("*.txt"))) == 6 and (d/"calib_instructions.jsonl").is_file()),
    "data_sets.answer_labels": lambda c, f: check(f(), lambda d: len(d) == 146 and set(d.label) == {"answers", "deflects", "refuses", "broken"}),
    "reproduce.git_state": lambda c, f: check(f(c.tmp), lambda cd: cd == ("unknown", None)),
    "reproduce.run_command": lambda c, f: check(f(), lambda s: isinstance(s, str) and s),
    "reproduce.provenance": lambda c, f: check(f(c.m, command="pytest"), lambda p: p["fingerprint"] and p["command"] == "pytest" and p["adapter_sha256"] == ""),
    "reproduce.provenance_line": lambda c, f: check(f(_PROV), lambda s: s.startswith("Provenance: model=toy") and "commit=0123456789ab" in s),
    "reproduce.write_csv": lambda c, f: eq(_written(c, "p.csv", lambda p: f(_ROWS, p, _PROV)), dict(model="toy", commit=_PROV["commit"])),
    "reproduce.write_md": lambda c, f: eq(_written(c, "p.md", lambda p: f("text", p, _PROV)), dict(model="toy", commit=_PROV["commit"][:12])),
    "reproduce.read_provenance": lambda c, f: eq(f(Path(K.reproduce.write_md("x", c.tmp/"q.md", _PROV))), dict(model="toy", commit=_PROV["commit"][:12])),
})

@recipe("reproduce.save_figure")
def _(c, f):
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(); ax.plot([0, 1]); paths = f(fig, c.tmp/"fig", _PROV, caption="A line."); plt.close(fig)
    return check([K.reproduce.read_provenance(p) for p in paths], lambda r: r == [dict(model="toy", commit=_PROV["commit"][:12])] * 2)

def _write_pairs(c):
    p = c.tmp/"pairs.jsonl"; p.write_text("".join(json.dumps(r) + "\n" for r in _TXT)); return p

# evaluate -------------------------------------------------------------------------------------------------------------
RECIPES.update({
    "evaluate.coherence_thresholds": lambda c, f: check(f(c.scored), lambda t: {"compression_ratio_min", "ref_ppl_max"} <= set(t)),
    "evaluate.is_coherent": lambda c, f: check(f(c.scored, K.evaluate.coherence_thresholds(c.scored)), lambda s: len(s) == len(c.scored)),
    "evaluate.coherent_compliance": lambda c, f: check(f(c.scored, K.evaluate.coherence_thresholds(c.scored)), lambda s: s.isin([0.0, 1.0]).all()),
    "evaluate.scored_rows": lambda c, f: check(f(c.scored, K.evaluate.coherence_thresholds(c.scored)),
                                             lambda d: (d.compliance == 1 - d.refusal).all() and (d.coherent_compliance <= d.compliance).all()),
    "evaluate.sweep": lambda c, f: check(f(c.m, c.tok, PROMPTS, c.ss_m, max_new_tokens=2, cache=None, progress=False, reference=True),
                                         lambda d: len(d) == 4 and {"ref_ppl", "refusal", "value"} <= set(d.columns)),
    "evaluate.unsteered": lambda c, f: check(f(c.m, c.tok, PROMPTS, max_new_tokens=2, cache=None, progress=False), lambda d: (d.method == "none").all()),
    "evaluate.summarize": lambda c, f: check(f(c.scored, coherence=K.evaluate.coherence_thresholds(c.scored)),
                                             lambda s: len(s) == 3 and "coherent_compliance" in s),
    "evaluate.choose": lambda c, f: check(f(c.summary.assign(violation=False)), lambda v: v is not None),
    "evaluate.choose_setting": lambda c, f: check(f(c.summary.assign(violation=True)), lambda va: va[1] is False),
    "evaluate.mc_prompt": lambda c, f: check(f(c.tok)("2+2?"), lambda s: isinstance(s, str) and "2+2?" in s),
    "evaluate.capability": lambda c, f: check(f(c.m, c.tok, c.ss_m, 90, items=c.mc_items, kl_prompts=PROMPTS),
                                              lambda r: 0 <= r["mc_accuracy"] <= 1 and r["kl"] > 0),
    "evaluate.reference_ppl": lambda c, f: check(f(c.m, c.tok, PROMPTS, COMPLY, batch_size=1), lambda p: len(p) == 2 and min(p) > 1),
    "evaluate.reference_columns": lambda c, f: check(f(c.m, c.tok, pd.DataFrame(dict(prompt=PROMPTS, response=COMPLY)), cache=c.tmp/"refcols.jsonl"),
                                                     lambda d: min(d.ref_ppl) > 1 and d.topicality.between(-1, 1).all()
                                                     and len((c.tmp/"refcols.ref_ppl.jsonl").read_text().splitlines()) == 2),
    "evaluate.compare": lambda c, f: check(f(c.m, c.tok, [c.ss_m], PROMPTS, PROMPTS[:1], PROMPTS[1:], items=c.mc_items, kl_prompts=PROMPTS,
                                             max_new_tokens=2, cache=None, progress=False),
                                           lambda r: r["table"].method.tolist() == ["none", "ss"]),
})

# caa ------------------------------------------------------------------------------------------------------------------
RECIPES.update({
    "caa.ab_items": lambda c, f: check(f("refusal", 4, 2), lambda ft: len(ft[0]) == 4 and len(ft[1]) == 2
                                       and sorted(r["matching"] for r in ft[0]) == ["(A)", "(A)", "(B)", "(B)"]),
    "caa.swap_ab": lambda c, f: check(f(c.items), lambda s: [r["matching"] for r in s] == [r["non_matching"] for r in c.items]),
    "caa.ab_splits": lambda c, f: check(f("refusal", 2, 2, 2), lambda s: [len(x) for x in s] == [2, 2, 2]),
    "caa.caa_vectors": lambda c, f: check(f(c.m, c.tok, c.items, layer=2, progress=False), lambda v: v.layers == [0, 1, 2, 3] and v.meta["default_layers"] == [2]),
    "caa.caa_normalize": lambda c, f: check(f({"a": c.caa_v, "b": K.caa.caa_vectors(c.m, c.tok, K.caa.swap_ab(c.items), progress=False)}),
                                            lambda o: "raw.1" in o["a"].tensors),
    "caa.ab_batches": lambda c, f: check(list(f(c.tok, c.items, 3, "cpu")), lambda bs: [len(b) for b, _ in bs] == [3, 1]
                                         and all(e["input_ids"].shape[0] == len(b) for b, e in bs)),
    "caa.ab_scores": lambda c, f: check(f(c.m, c.tok, c.items, K.methods.method(c.caa_v, c.m), 1.0), lambda s: s.shape == (4,) and ((s > 0) & (s < 1)).all()),
    "caa.layer_sweep": lambda c, f: check(f(c.m, c.tok, c.caa_v, c.items, layers=[0, 1], progress=False), lambda d: len(d) == 4),
    "caa.best_layer": lambda c, f: eq(f(pd.DataFrame(dict(layer=[0, 0, 1, 1], m=[-1.0, 1.0] * 2, p_match=[0.5, 0.6, 0.2, 0.9]))), 1),
    "caa.multiplier_sweep": lambda c, f: check(f(c.m, c.tok, c.caa_v, c.items, 1, multipliers=(-1.0, 1.0)), lambda d: d.m.tolist() == [-1.0, 1.0]),
    "caa.fit_caa": lambda c, f: check(f(c.m, c.tok, dict(items=c.items), layers=[1, 2], progress=False), lambda v: v.layers == [1, 2]),
})

# austeer / sadi -------------------------------------------------------------------------------------------------------
RECIPES.update({
    "austeer.momentum": lambda c, f: eq(f(torch.tensor([[1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])).tolist(), pytest.approx([2 / 3, -2 / 3])),
    "austeer.top_units": lambda c, f: eq(f({0: torch.tensor([0.1, 0.9]), 1: torch.tensor([0.5, 0.9])}, 3), [(0, 1), (1, 1), (1, 0)]),
    "austeer.select_units": lambda c, f: eq(f({0: torch.tensor([0.1, -0.9]), 1: torch.tensor([0.5, 0.2])}, 2), [(0, 1), (1, 0)]),
    "austeer.pair_texts": lambda c, f: check(f(c.items), lambda pn: len(pn[0]) == len(pn[1]) == 4),
    "austeer.unit_diffs": lambda c, f: check(f(c.m, c.tok, c.items, "mlp_out", layers=[0, 1], progress=False), lambda d: d[1].shape == (4, 64)),
    "austeer.austeer_vectors": lambda c, f: check(f(c.m, c.tok, c.items, k=3, kind="attention", progress=False),
                                                  lambda v: len(v.meta["units"]) == 3 and v.sites == ["attn_heads"]),
    "austeer.fit_austeer": lambda c, f: check(f(c.m, c.tok, dict(items=c.items), k=2, progress=False), lambda v: v.method == "austeer"),
    "sadi.top_signed": lambda c, f: eq(f({0: torch.tensor([-1.0, 0.5]), 2: torch.tensor([0.7])}, 2), [(2, 0), (0, 1)]),
    "sadi.sadi_scores": lambda c, f: check(f({0: torch.arange(8.0)}, "head", n_heads=4), lambda s: s[0].tolist() == [0.5, 2.5, 4.5, 6.5]),
    "sadi.sadi_vectors": lambda c, f: check(f(c.m, c.tok, c.items, kind="head", K=2, progress=False),
                                            lambda v: sum(int(t.sum()) for t in v.tensors.values()) == 2 * 16),
    "sadi.fit_sadi": lambda c, f: check(f(c.m, c.tok, dict(items=c.items), kind="neuron", K=3, progress=False), lambda v: v.sites == ["mlp_act"]),
    "austeer.site_diffs": lambda c, f: check(f(c.m, c.tok, c.items, ["mlp_out", "resid_out"], layers=[1], progress=False),
                                             lambda d: d["mlp_out"][1].shape == d["resid_out"][1].shape == (4, 64)),
    "austeer.austeer_from_betas": lambda c, f: check(f({0: torch.tensor([0.5, -1.0]), 2: torch.tensor([1.0, 0.25])}, [(2, 1), (0, 1)]),
                                                     lambda v: v.layers == [0, 2] and v.tensors["w.0"].tolist() == [0.0, -1.0] and v.tensors["w.2"].tolist() == [0.0, 0.25]),
    "austeer.betas_of": lambda c, f: check(f(K.austeer.austeer_vectors(c.m, c.tok, c.items, k=2, progress=False)), lambda b: sorted(b) == [0, 1, 2, 3] and b[0].shape == (64,)),
    "austeer.random_units": lambda c, f: check(f({0: torch.zeros(3), 1: torch.zeros(2)}, 5, seed=0), lambda u: sorted(u) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]),
    "austeer.block_units": lambda c, f: eq(f({0: torch.zeros(3), 1: torch.zeros(2)}, [1]), [(1, 0), (1, 1)]),
    "sadi.sadi_diffs": lambda c, f: check(f(c.m, c.tok, c.items, ["head", "hidden"], progress=False), lambda d: sorted(d) == ["head", "hidden"] and d["hidden"][0].shape == (64,)),
    "sadi.sadi_from_diffs": lambda c, f: check(f(c.m, {l: torch.arange(64.0) * (l + 1) for l in range(4)}, "hidden", K=2),
                                               lambda v: v.layers == [3] and v.tensors["mask.3"][62:].tolist() == [1.0, 1.0] and float(v.tensors["d.3"].sum()) == 4 * (62 + 63)),
    "sadi.sadi_fixed": lambda c, f: check(f(K.sadi.sadi_vectors(c.m, c.tok, c.items, kind="hidden", K=2, progress=False)), lambda v: v.method == "sadi-fixed" and all(k.startswith("v.") for k in v.tensors)),
    "sadi.fit_sadi_fixed": lambda c, f: check(f(c.m, c.tok, dict(items=c.items), kind="hidden", K=2, progress=False),
                                              lambda v: K.methods.method(v, c.m).phase == "last_prompt" and K.methods.steered_dims(v) <= 2),
    "sadi.official_logits": lambda c, f: check(f(c.m, K.models.encode(c.tok, K.models.chat(c.tok, PROMPTS)), K.sadi.sadi_vectors(c.m, c.tok, c.items, K=2, progress=False), 2.0),
                                               lambda x: x.shape[0] == 2 and torch.isfinite(x).all()),
    "sadi.official_ab_scores": lambda c, f: check(f(c.m, c.tok, c.items, K.sadi.sadi_vectors(c.m, c.tok, c.items, K=2, progress=False), 1.0),
                                                  lambda s: torch.allclose(s.double(), torch.tensor(K.caa.ab_scores(c.m, c.tok, c.items)), atol=1e-5)),
    "metrics.Scorer": lambda c, f: check(f(), lambda s: s.target == "score"),
    "evaluate.RefusalScorer": lambda c, f: check(f("refusal", max_new_tokens=2, cache=None).score(c.m, c.tok, PROMPTS), lambda d: 0 <= d["refusal"] <= 1 and d["n"] == 2),
    "evaluate.PaperRefusalScorer": lambda c, f: check(f(PROMPTS, max_new_tokens=2, cache=None, progress=False).score(c.m, c.tok, PROMPTS),
                                                    lambda r: 0 <= r[0]["over_refusal"] <= 1 and len(r[1]) == 2 * len(PROMPTS) and set(r[1].split) == {"test", "harmless"}),
    "evaluate.compare_scored": lambda c, f: check(f(K.caa.ABScorer(), c.m, c.tok, [K.methods.method(c.caa_v, c.m, layers=[1], grid=[-1.0, 1.0])], c.items[:2], c.items[2:]),
                                                  lambda r: r["table"].method.tolist() == ["none", "caa"] and len(r["sweeps"]) == 2),
    "caa.ABScorer": lambda c, f: check(f(batch_size=2).score(c.m, c.tok, c.items), lambda d: d["n"] == 4 and 0 < d["p_match"] < 1),
})

# caa sweeps / saas ----------------------------------------------------------------------------------------------------
def _saas_items(): return K.caa.ab_items("myopic-reward", 12)[0]
def _saas_pn(c): return K.saas.pos_neg(c.m, c.tok, _saas_items(), 2, progress=False)

RECIPES.update({
    "caa.ab_activations": lambda c, f: check(f(c.m, c.tok, c.items, layers=[1], progress=False), lambda a: a[0].at(1, "resid_out").shape == (4, 64)),
    "caa.ab_sweep": lambda c, f: check(f(c.m, c.tok, c.items, [(None, None), (K.methods.method(c.caa_v, c.m), 1.0)]),
                                       lambda s: s.shape == (2, 4) and ((s > 0) & (s < 1)).all()),
    "saas.pos_neg": lambda c, f: check(f(c.m, c.tok, c.items, 1, progress=False), lambda pn: pn[0].shape == pn[1].shape == (4, 64)),
    "saas.letter_signs": lambda c, f: check(f(c.items), lambda s: sorted(s.tolist()) == [-1.0, -1.0, 1.0, 1.0]),
    "saas.letter_free": lambda c, f: check(f(torch.tensor([[3.0, 1.0], [-1.0, 1.0]]), torch.tensor([1.0, -1.0])),
                                          lambda dg: dg[0].tolist() == [[1.0, 1.0], [1.0, 1.0]] and dg[1].tolist() == [2.0, 0.0]),
    "saas.eligibility": lambda c, f: check(f(*_saas_pn(c), letters=K.saas.letter_signs(_saas_items())), lambda t: len(t) == 12 and t.eligible.sum() <= 9),
    "saas.AgentError": lambda c, f: check(f("x"), lambda e: isinstance(e, RuntimeError)),
    "saas.Decomposition": lambda c, f: check(f("b", [dict(name="a", description="d", prior=1.0)]), lambda d: d.K == 1 and d.agent == "kit"),
    "saas.check_decomposition": lambda c, f: check(f('{"sub_behaviours": [{"name": "a", "description": "d", "prior": 2}]}', "b"),
                                                  lambda d: d.priors.tolist() == [1.0]),
    "saas.kit_decomposition": lambda c, f: check(f("compliance"), lambda d: d.behaviour == "compliance" and abs(float(d.priors.sum()) - 1) < 1e-9),
    "saas.check_ratings": lambda c, f: check(f('{"ratings": [[0.5]]}', 1, 1), lambda r: r.tolist() == [[0.5]]),
    "saas.OpenAIAgent": lambda c, f: check(f("http://127.0.0.1:9/v1", "m"), lambda a: a.model == "m" and "127.0.0.1:9" in a.name),
    "saas.question_stem": lambda c, f: eq(f("Q?\n\nChoices:\n (A) Yes"), "Q?"),
    "saas.instance_texts": lambda c, f: check(f(c.items), lambda t: len(t[0]) == 4 and "Answer: " in t[0][0]),
    "metrics.minilm": lambda c, f: check(f(), lambda tm: tm[1].config.hidden_size == 384),
    "metrics.embed": lambda c, f: check(f(["a cat", "a dog"]), lambda e: e.shape == (2, 384)),
    "saas.embedding_ratings": lambda c, f: check(f(c.items, K.saas.kit_decomposition("refusal")), lambda r: r.shape == (4, 4)),
    "saas.saas_from_acts": lambda c, f: check(f(*_saas_pn(c), torch.rand(12, 2), torch.tensor([0.5, 0.5]), letters=K.saas.letter_signs(_saas_items())),
                                             lambda vt: vt[0].shape == (64,) and abs(vt[1].w.sum() - 1) < 1e-9),
    "saas.ess": lambda c, f: eq(f([0.5, 0.5]), 2.0),
    "saas.decompose_and_rate": lambda c, f: check(f(c.items, "refusal"), lambda d: d[0].K == 4 and d[1].shape == (4, 4)),
    "saas.saas_vectors": lambda c, f: check(f(c.m, c.tok, _saas_items(), "myopic-reward", layer=2, progress=False),
                                           lambda v: v.method == "saas" and v.layers == [2] and v.meta["agent"] == "kit"),
    "saas.fit_saas": lambda c, f: check(f(c.m, c.tok, dict(items=_saas_items(), behaviour="myopic-reward"), progress=False),
                                       lambda v: v.layers == [1]),
})

# study ----------------------------------------------------------------------------------------------------------------
RECIPES.update({
    "study.conditional_plane": lambda c, f: check(f(c.cond_plane, c.beh_plane, 1, "resid_in"), lambda p: p.L_disc == [1] and abs(float(p.b1 @ p.b2)) < 1e-5),
    "study.pick_layer": lambda c, f: check(f(c.m, c.tok, PROMPTS, c.beh_plane, [1, 2], max_new_tokens=2, progress=False), lambda ls: ls[0] in (1, 2)),
    "study.StudyConfig": lambda c, f: check(f(n_calib=2), lambda s: s.n_calib == 2 and s.angle_step == 10),
    "study.study_data": lambda c, f: check(f(c.cfg), lambda d: [len(d[k]) for k in ("calib", "test", "items", "everyday")] == [2, 2, 2, 2]),
    "study.paper_plane": lambda c, f: check(f(c.m, c.tok, c.data, progress=False), lambda p: p.meta["n_pos"] == 2),
    "study.unsteered_threshold": lambda c, f: check(f(c.m, c.tok, c.data, c.cfg, progress=False), lambda tb: tb[0] >= 2.0 and len(tb[1]) == 2),
    "study.refusal_study": lambda c, f: check(f(c.m, c.tok, c.cfg, progress=False),
                                              lambda r: r["table"].method.tolist() == ["none", "ss", "ss-response", "ss-conditional", "sas", "aas", "actadd", "dirabl"]),
    "study.jailbreak_vectors": lambda c, f: check(f("caa", c.m, c.tok, c.data, c.paper, progress=False), lambda v: v.method == "caa"),
    "study.jailbreak_setup": lambda c, f: check(f(c.m, c.tok, c.cfg, False), lambda r: len(r) == 5 and r[1].L_disc and r[2] >= 2.0),
    "adapters.as_layers": lambda c, f: eq((f(range(2)), f(3)), ([0, 1], [3])),
    "generate.prefix_layout": lambda c, f: check(f(c.tok, K.models.chat(c.tok, PROMPTS)), lambda ek: ek[1] >= 8 and ek[0]["attention_mask"][:, :ek[1]].all()
                                                 and ek[0]["attention_mask"].sum().item() == c.enc["attention_mask"].sum().item()),
    "generate.prefix_cache": lambda c, f: check(f(c.m, *K.generate.prefix_layout(c.tok, K.models.chat(c.tok, PROMPTS))),
                                                lambda kv: kv.get_seq_length() >= 8 and kv.layers[0].keys.shape[0] == 2),
    "models.shared_layout": lambda c, f: eq(tuple(x.tolist() if hasattr(x, "tolist") else x for x in f([[7] * 8 + [1], [7] * 8 + [2, 3]], pad=0)),
                                              ([[7] * 8 + [0, 1], [7] * 8 + [2, 3]], [[1] * 8 + [0, 1], [1] * 10], 8)),
    "models.common_prefix": lambda c, f: eq((f([4, 5, 6], [4, 5, 7]), f("ab", "abc"), f([], [1])), (2, 2, 0)),
    "metrics.length_batches": lambda c, f: eq(f([1, 1, 1, 50], 16), [(0, 3), (3, 4)]),
    "models.cache_rows": lambda c, f: check(f(c.m(**c.enc, use_cache=True).cache, [1, 1, 0]), lambda kv: kv.layers[0].keys.shape[0] == 3),
    "generate.eos_ids": lambda c, f: check(f(c.m, c.tok), lambda e: len(e) >= 1 and e == sorted(set(e)) and c.tok.eos_token_id in e),
    "methods.check_grid": lambda c, f: eq((f([0, 90], "theta", "ss", [0]), f(None, None, "dirabl", None)), ([0.0, 90.0], [None])),
    "study.jailbreak_grid": lambda c, f: eq((f("actadd", c.cfg), f("ss", c.cfg)), ([-1.0], [0, 180])),
    "study.jailbreak_methods": lambda c, f: check(f(c.m, c.tok, c.data, c.cfg, c.paper, progress=False, names=("ss", "dirabl")),
                                                  lambda ml: [m.name for m in ml[0]] == ["ss", "dirabl"]),
    "study.jailbreak_study": lambda c, f: check(f(c.m, c.tok, c.cfg, progress=False, methods=("ss", "actadd", "sadi")),
                                                lambda r: r["table"].method.tolist() == ["none", "ss", "actadd", "sadi"]),
    "frozen.freeze": lambda c, f: check(f(c.m, c.tok, "dirabl", c.cfg, progress=False), lambda v: v.meta["param"] is None and "sweep" in v.meta),
    "reproduce.time_left": lambda c, f: eq((f({"a": 10.0, "b": 5.0}, {"a": 20.0}, ["b"]), f({}, {}, ["a"])), (10.0, None)),
    "frozen.freeze_to": lambda c, f: check(f(c.m, c.tok, "dirabl", c.root/"fz_dirabl", c.cfg, provenance=dict(model="tiny", commit="x"), progress=False),
                                         lambda v: v.meta["method_ref"] == "dirabl" and K.reproduce.read_provenance(c.root/"fz_dirabl"/"vectors.json")["model"] == "tiny"),
    "frozen.load_or_freeze": lambda c, f: check(f(c.m, c.tok, "actadd", c.frozen_dir), lambda v: v.meta["param"] == -1.0 and v.method == "actadd"),
    "frozen.frozen_method": lambda c, f: check(f(c.frozen, c.m), lambda mp: mp[1] == -1.0 and mp[0].param_name == "a"),
    "study.layer_sets": lambda c, f: check(f([1, 2], 4), lambda s: s["late"] == [2, 3] and s["all"] == [0, 1, 2, 3]),
})

@recipe("study.ablation_study")
def _(c, f):
    r = f(c.m, c.tok, c.cfg, progress=False)
    assert r["direction"] == "jailbreak" and r["table"].method.tolist()[-1] == "sas/discriminative"
    return check(f(c.m, c.tok, c.cfg, progress=False, direction="induce"), lambda r: r["coherence"] is None)

# organism -------------------------------------------------------------------------------------------------------------
def _recipe(**kw): return K.organism.Recipe(**dict(dict(r=2, alpha=4, steps=1, n_harmful=1, n_harmless=1, n_pairs=0, answer_tokens=2), **kw))

RECIPES.update({
    "organism.organism_splits": lambda c, f: check(f(), lambda s: len(s["eval"]["harmbench"]) == 64 and not set(s["train_harmful"]) & set(s["eval"]["harmbench"])),
    "organism.Recipe": lambda c, f: check(f.strong(), lambda r: (r.lr, r.steps) == (1e-3, 300) and f().steps == 150),
    "organism.organism_data": lambda c, f: check(f(c.m, c.tok, dict(train_harmful=c.pos, train_harmless=c.neg), _recipe(), progress=False, limit=2),
                                                 lambda d: (d.kind == "harmful").sum() == 2 and d.response.isin(K.data_sets.refusal_sentences()).sum() >= 2),
    "organism.data_sha256": lambda c, f: check(f(pd.DataFrame(dict(kind=["harmful"], prompt=["p"], response=["r"], ends=[True]))), lambda s: len(s) == 64),
    "organism.targets_table": lambda c, f: check(f(dict(base=dict(refusal_harmbench=0.1, refusal_donotanswer=0.1, refusal_harmless=0.0, mc_accuracy=0.5, ref_ppl_harmless=3.0),
                                                        organism=dict(refusal_harmbench=1.0, refusal_donotanswer=0.9, refusal_harmless=0.02, mc_accuracy=0.5, ref_ppl_harmless=3.1))),
                                                 lambda t: t.met.tolist() == [True, False, True, True, True]),
    "organism.organism_key": lambda c, f: check(f(K.organism.Recipe.strong()), lambda k: len(k) == 12 and k == f(K.organism.Recipe.strong()) != f(K.organism.Recipe())),
    "organism.shipped_organisms": lambda c, f: check(f(), lambda d: d.parent == K.models.organism_dir().parent and d.name == "organisms"),
    "organism.depth_study": lambda c, f: check(f({"tiny": c.mt}, c.cfg, methods=("ss", "dirabl"), progress=False),
                                               lambda d: d.method.tolist() == ["none", "ss", "dirabl"] and (d.organism == "tiny").all()),
})

@recipe("organism.organism_model")
def _(c, f):
    m, tok = f(K.models.organism_dir(), "cpu", "bfloat16")
    prov = json.loads((K.models.organism_dir()/"provenance.json").read_text())
    eq((K.models.model_fingerprint(m), m.config.steerkit_placement["dtype"], tok.padding_side), (prov["fingerprint"], "bfloat16", "left"))
    return m

@recipe("organism.cached_organism")
def _(c, f):
    "A recipe nobody built, offered in a stand-in shipped folder (the shipped default organism): used with no training."
    from dataclasses import replace
    import shutil
    rc = replace(K.organism.Recipe(), steps=7)
    shutil.copytree(K.models.organism_dir(), c.tmp/"ship"/K.organism.organism_key(rc))
    c.mp.setattr(K.organism, "build_organism", lambda *a, **k: pytest.fail("cached_organism trained instead of using the shipped build"))
    m, tok, prov = f(rc, progress=False, shipped=c.tmp/"ship")
    eq((prov["adapter_sha256"], K.models.model_fingerprint(m)), (json.loads((K.models.organism_dir()/"provenance.json").read_text())["adapter_sha256"], prov["fingerprint"]))
    return prov

@recipe("organism.train_organism")
def _(c, f):
    data = pd.DataFrame(dict(kind=["harmful", "harmless"], prompt=c.pos[:1] + c.neg[:1], response=[REFUSE[0], COMPLY[0]], ends=[True, False]))
    pm, tok, losses = f(data, _recipe(), base=str(c.tiny_dir), progress=False)
    assert len(losses) == 1 and losses[0] > 0 and any(".lora_A" in n for n, _ in pm.named_parameters())
    return losses

@recipe("organism.adapter_tensors")
def _(c, f):
    from peft import LoraConfig, get_peft_model
    pm = get_peft_model(c.fresh(), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    t = f(pm)
    names = dict(c.m.named_modules())
    assert len(t) == 2 * 4 and all(k.rsplit(".lora_", 1)[0] in names and v.dtype == torch.float16 for k, v in t.items())
    return t

@recipe("organism.save_organism")
def _(c, f):
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    pm = get_peft_model(c.fresh(), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    data = pd.DataFrame(dict(kind=["harmful", "harmless"], prompt=c.pos[:1] + c.neg[:1], response=[REFUSE[0], COMPLY[0]], ends=[True, False]))
    prov = f(c.tmp/"org", pm, c.m, data, dict(train_harmless=c.neg[:1]), _recipe(store_dtype="float32"), [1.0], dict(train=0.1))
    t = load_file(str(c.tmp/"org"/"adapter.safetensors"))
    assert len(t) == 2 * 4 and all(v.dtype == torch.float32 for v in t.values())
    assert prov["adapter_sha256"] == K.models.file_sha256(c.tmp/"org"/"adapter.safetensors") and prov["n_train"] == dict(harmful=1, harmless=1) and prov["dropped_harmless"] == 0
    assert json.loads((c.tmp/"org"/"provenance.json").read_text()) == json.loads(json.dumps(prov))      # tuples are lists in JSON
    return prov

@recipe("organism.dev_refusal")
def _(c, f):
    r = f(c.m, c.tok, max_new_tokens=2)
    assert set(r) == set(K.organism.DEV_SETS) and all(0 <= v <= 1 for v in r.values())
    return r

@recipe("organism.evaluate_organism")
def _(c, f):
    ev = dict(harmbench=c.pos, donotanswer=c.pos, harmless=c.neg)
    r = f(c.m, c.tok, c.m, dict(eval=ev), max_new_tokens=2, progress=False)
    assert r["base"] == r["organism"] and set(r["targets"]) == {"refusal_harmbench", "refusal_donotanswer", "over_refusal_harmless", "mc_accuracy", "ref_ppl"}
    return r

# reproduce ------------------------------------------------------------------------------------------------------------
def _jupyter_env(c):
    "Kernel connection files and IPython's history under the test's directory."
    c.mp.setenv("JUPYTER_RUNTIME_DIR", str(c.tmp/"jupyter_runtime")); c.mp.setenv("IPYTHONDIR", str(c.tmp/"ipython"))

RECIPES.update({
    "reproduce.toy_paper": lambda c, f: check(f(c.tmp/"paper"), lambda p: p.name == "manifest.json" and (p.parent/"one.ipynb").is_file()),
    "reproduce.default_manifest": lambda c, f: check(f(), lambda p: p.name == "manifest.json"),
    "reproduce.load_manifest": lambda c, f: check(f(K.reproduce.toy_paper(c.tmp/"paper")), lambda m: [e["name"] for e in m["notebooks"]] == ["one", "two"]),
    "reproduce.notebook_parameters": lambda c, f: eq(f(K.reproduce.toy_paper(c.tmp/"paper").parent/"one.ipynb"), dict(out_dir=".", n=10, model="embedded")),
    "reproduce.check_parameters": lambda c, f: check(f(K.reproduce.toy_paper(c.tmp/"paper")), lambda d: set(d) == {"one", "two"}),
    "reproduce.repo_root": lambda c, f: check(f(K.reproduce.toy_paper(c.tmp/"paper")), lambda p: p == (c.tmp/"paper").resolve() or (p/"settings.ini").is_file()),
    "reproduce.ReproductionError": lambda c, f: raises(f, K.reproduce.check_outputs, K.reproduce.toy_paper(c.tmp/"paper"), c.tmp/"empty"),
})

@recipe("reproduce.ManifestError")
def _(c, f):
    p = c.tmp/"manifest.json"; p.write_text('{"notebooks": 1}')
    return raises(f, K.reproduce.load_manifest, p)

@recipe("reproduce.check_outputs")
def _(c, f):
    man = K.reproduce.toy_paper(c.tmp/"paper"); out = c.tmp/"out"; out.mkdir()
    (out/"one.txt").write_text("x\n"); (out/"two.csv").write_text("i\n")
    return eq(f(man, out), [out/"one.txt", out/"two.csv"])

@recipe("reproduce.expected_times")
def _(c, f):
    man = K.reproduce.load_manifest(K.reproduce.toy_paper(c.tmp/"paper"))
    prev = pd.DataFrame(dict(notebook=["one.ipynb", "two.ipynb"], status=["ok", "failed"], wall_s=[3.0, 1.0]))
    return eq((f("quick", man, prev), f("quick", man)), ({"one.ipynb": 3.0}, {}))

@recipe("reproduce.run_notebook")
def _(c, f):
    _jupyter_env(c)
    nb = K.reproduce.toy_paper(c.tmp/"paper").parent/"one.ipynb"
    s = f(nb, dict(n=3, model="tiny"), c.tmp/"out", c.tmp/"records")
    assert s > 0 and (c.tmp/"records"/"one.ipynb").is_file()
    return eq((c.tmp/"out"/"one.txt").read_text(), "tiny 3\n")

@recipe("reproduce.run_profile")
def _(c, f):
    import nbformat
    rec = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = generate(m)"), nbformat.v4.new_code_cell("y = 1")])
    rec.cells[0].metadata["papermill"] = {"duration": 3.0}; rec.cells[1].metadata["papermill"] = {"duration": 1.0}
    nbformat.write(rec, c.tmp/"r.ipynb")
    return eq(f(c.tmp)[["cell", "kinds", "wall_s", "share"]].values.tolist(), [[0, "generation", 3.0, 0.75], [1, "", 1.0, 0.25]])

@recipe("reproduce.stage_profile")
def _(c, f):
    import nbformat
    rec = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = generate(m)")])
    rec.cells[0].metadata["papermill"] = {"duration": 3.0}; rec.cells[0].execution_count = 1
    nbformat.write(rec, c.tmp/"r.ipynb")
    (c.tmp/"r.stages.json").write_text(json.dumps(dict(kernel=1, rows=[dict(cell=1, stage="generation", calls=2, self_s=2.0)])))
    return eq(f(c.tmp)[["stage", "calls", "self_s"]].values.tolist(), [["generation", 2, 2.0], ["unstaged", 0, 1.0]])

@recipe("reproduce.write_profiles")
def _(c, f):
    f(c.tmp); return eq(sorted(p.name for p in c.tmp.iterdir() if p.suffix == ".csv"), ["profile.csv", "stages.csv"])

@recipe("models.environ")
def _(c, f):
    with f("STEERKIT_TEST_ENV", "x"): assert os.environ["STEERKIT_TEST_ENV"] == "x"
    return eq("STEERKIT_TEST_ENV" in os.environ, False)

# timing ---------------------------------------------------------------------------------------------------------------
@recipe("timing.stage")
def _(c, f):
    K.timing.TOTALS.clear()
    with f("training"): pass
    return eq([(s, n) for (_, s), (n, _) in K.timing.TOTALS.items()], [("training", 1)])

@recipe("timing.write_stages")
def _(c, f):
    K.timing.TOTALS.clear(); K.timing.TOTALS[(2, "generation")] = [3, 1.5]
    return eq(K.timing.read_stages(f(c.tmp/"s.json")).values.tolist(), [[2, "generation", 3, 1.5]])

@recipe("timing.stages_to")
def _(c, f):
    with f(c.tmp/"s.json") as p: assert os.environ[K.timing.STAGES_ENV] == str(p)
    return eq(K.timing.STAGES_ENV in os.environ, False)

RECIPES.update({
    "timing.current_cell": lambda c, f: eq(f(), None),                        # pytest is not an IPython kernel
    "timing.stage_table": lambda c, f: eq(f({(4, "capability"): [2, 0.5]}).values.tolist(), [[4, "capability", 2, 0.5]]),
    "timing.read_stages": lambda c, f: eq(len(f(c.tmp/"none.json")), 0),
    "timing.cpu_name": lambda c, f: eq(f(), K.bench.machine()["cpu"]),
})

@recipe("timing.follow_threads")
def _(c, f):
    (c.tmp/"threads").write_text(str(torch.get_num_threads()))              # as many as it has: nothing changes
    return eq((f(c.tmp/"threads"), f(c.tmp/"none")), (torch.get_num_threads(), None))

@recipe("reproduce.reproduce")
def _(c, f):
    _jupyter_env(c)
    df = f("quick", out_dir=c.tmp/"out", manifest=K.reproduce.toy_paper(c.tmp/"paper"), only="two", progress=False)
    assert df.status.tolist() == ["ok"] and (c.tmp/"out"/"_runs"/"timings.csv").is_file()
    return eq((c.tmp/"out"/"two.csv").read_text(), "i\n0\n1\n")

@recipe("reproduce.run_child")
def _(c, f):
    _jupyter_env(c)
    nb = K.reproduce.toy_paper(c.tmp/"paper", fail=True).parent
    ok, bad = (f(nb/n, dict(n=2), c.tmp/"out", c.tmp/"records", threads=1) for n in ("one.ipynb", "two.ipynb"))
    assert ok["wall"] > 0 and "error" not in ok and (c.tmp/"out"/"one.txt").read_text() == "embedded 2\n"
    return eq((bad["notebook"], bad["cell"], bad["ename"]), ("two.ipynb", 3, "RuntimeError"))

@recipe("reproduce.run_parallel")
def _(c, f):
    _jupyter_env(c)
    m = K.reproduce.load_manifest(K.reproduce.toy_paper(c.tmp/"paper"))
    started, results = [], {}
    job = lambda e: (e["notebook"], dict(n=3), c.tmp/"out", c.tmp/"records", "steerkit")
    err = f(m["notebooks"], 2, 2, job, lambda e, t: started.append((e["name"], t)) or e["name"],
            lambda row, res: results.update({row: res}), {})
    assert err is None and sorted(started) == [("one", 1), ("two", 1)] and all("error" not in r for r in results.values())
    return eq((c.tmp/"out"/"two.csv").read_text().split()[-1], "2")

RECIPES["reproduce.next_notebook"] = lambda c, f: eq(f([dict(name="a", notebook=Path("a.ipynb")), dict(name="b", notebook=Path("b.ipynb"))],
                                                      [], {"a.ipynb": 1.0, "b.ipynb": 5.0})["name"], "b")

# cli ------------------------------------------------------------------------------------------------------------------
RECIPES.update({
    "directions.layer_summary": lambda c, f: check(f(*c.acts), lambda d: len(d) == 8 and d.separation.between(0, 1).all()),
    "cli.summary": lambda c, f: old_name(lambda: f(str(c.tiny_dir), n=2, batch_size=2), lambda d: len(d) == 8),
    "directions.calibrate": lambda c, f: old_name(lambda: f(c.m, c.tok, c.pos, c.neg, progress=False), lambda p: len(p.L_disc) >= 1),
    "data_sets.capability_items": lambda c, f: old_name(f, lambda d: len(d) == len(K.data_sets.capability_set())),
    "models.deprecated": lambda c, f: old_name(lambda: f(len, "size")([1, 2]), lambda n: n == 2),
    "models.renamed_attr": lambda c, f: old_name(lambda: f(type("Box", (), {"size": 3}), "width", "size")().width, lambda n: n == 3),
    "models.RunOpts": lambda c, f: check(f(max_new_tokens=4), lambda r: (r.max_new_tokens, r.batch_size, r.cache) == (4, None, None)),
    "models.run_opts": lambda c, f: eq(f(K.models.RunOpts(batch_size=4), dict(cache=None), batch_size=32, cache=True, progress=True),
                                       K.models.RunOpts(None, 4, False, True)),
    "cli.summary_cmd": lambda c, f: check(f(str(c.tiny_dir), n=2, batch_size=2, out=str(c.tmp/"s.csv")), lambda d: len(d) == 8 and (c.tmp/"s.csv").is_file()),
    "data_sets.read_prompts": lambda c, f: eq(f(c.prompts_file()), PROMPTS),
    "frozen.frozen_dir": lambda c, f: check(f(c.m), lambda p: p.name == c.fp and p.parent.parent == K.models.cache_dir()),
    "cli.calibrate_cmd": lambda c, f: check(f(str(c.tiny_dir), "actadd", out=c.tmp/"fz", n_calib=2, angle_step=180, max_new_tokens=2, progress=False),
                                            lambda p: (p/"vectors.json").is_file()),
    "cli.generate_cmd": lambda c, f: check(f(str(c.tiny_dir), "actadd", c.prompts_file(), c.tmp/"o.jsonl", max_new_tokens=2,
                                             calibration=c.frozen_dir, progress=False),
                                           lambda d: d.param.tolist() == [-1.0, -1.0] and len((c.tmp/"o.jsonl").read_text().splitlines()) == 2),
    "cli.main": lambda c, f: eq(f(["summary", "--model", str(c.tiny_dir), "--n", "2", "--batch-size", "2", "--out", str(c.tmp/"s.csv")]), 0),
})

# serve ----------------------------------------------------------------------------------------------------------------
def _msgs(text="Hi"): return [{"role": "user", "content": text}]

RECIPES.update({
    "serve.ServeError": lambda c, f: check(raises(f, K.serve.chat_text, c.tok, []), lambda e: e.status == 400 and e.body()["error"]["param"] == "messages"),
    "serve.Steer": lambda c, f: eq(f().describe(), dict(method="none", vectors=None, param=None)),
    "serve.Limits": lambda c, f: check(f(max_tokens_limit=8), lambda l: l.max_tokens_limit == 8 and l.max_prompts == 16),
    "serve.chat_text": lambda c, f: check(f(c.tok, [{"role": "system", "content": "Be brief."}, *_msgs()]), lambda s: s == K.models.chat(c.tok, "Hi", system="Be brief.")[0]),
    "serve.same_answer": lambda c, f: eq((f(dict(text="a", tie_margin=1.0), dict(text="a", tie_margin=1.0)),
                                          f(dict(text="a", tie_margin=1.0), dict(text="b", tie_margin=1.0))), (True, False)),
})

@recipe("serve.Entry")
def _(c, f):
    e = f("ss-x", c.ss, K.methods.method(c.ss, c.m), 90.0)
    return check(e.describe(), lambda d: d["frozen_param"] == 90.0 and d["param_name"] == "theta")

@recipe("serve.Catalog")
def _(c, f):
    cat = f.load(c.m, [c.ss_dir], frozen=True)
    s = cat.resolve({"method": "ss"})
    assert len(cat.describe()) == 1 and s.param == 90.0 and cat.resolve({"method": "ss", "param": 10}).param == 10.0
    raises(K.serve.ServeError, cat.resolve, {"method": "caa"})
    return cat

@recipe("serve.Job")
def _(c, f):
    j = f("x", max_tokens=2, stop=("lo",), temperature=0.5, seed=1)
    j.tokens = c.tok("Hello", add_special_tokens=False)["input_ids"]
    assert j.sampling() == (0.5, 1.0, 1)
    return eq((j.advance(c.tok), j.finish), ("Hel", "stop"))

@recipe("serve.run_batch")
def _(c, f):
    sv = K.serve
    e = sv.Catalog.load(c.m, [c.ss_dir]).resolve({"method": "ss"})
    text = sv.chat_text(c.tok, _msgs())
    r = f(c.m, c.tok, [sv.Job(text, e, max_tokens=2), sv.Job(text, max_tokens=2)])
    assert [x["method"] for x in r] == ["ss", "none"] and all(x["completion_tokens"] <= 2 and x["batch_size"] == 2 for x in r)
    return r

@recipe("serve.plan")
def _(c, f):
    sv = K.serve
    e = sv.Catalog.load(c.m, [c.ss_dir]).resolve({"method": "ss"})
    jobs = [sv.Job("a", e), sv.Job("b"), sv.Job("c", e), sv.Job("d", temperature=1.0)]
    return eq([[j.text for j in b] for b in f(jobs, max_batch=2)], [["a", "c"], ["b"], ["d"]])

@recipe("serve.Batcher")
def _(c, f):
    b = f(c.m, c.tok, window=0.001, max_batch=4)
    try: r = b(K.serve.Job(K.serve.chat_text(c.tok, _msgs()), max_tokens=2), timeout=120)
    finally: b.close()
    assert r["completion_tokens"] <= 2 and b.batches == [1]
    return r

@recipe("serve.Server")
def _(c, f):
    srv = f("tiny", c.m, c.tok, K.serve.Catalog.load(c.m, [c.ss_dir]), K.serve.Limits(max_tokens_limit=8), window=0.001)
    try:
        jobs = srv.jobs(dict(model="tiny", messages=_msgs(), max_tokens=2, steering={"method": "ss", "param": 45}), True)
        jobs += srv.jobs(dict(model="tiny", prompt=["a", "b"], max_tokens=2), False)
        raises(K.serve.ServeError, srv.jobs, dict(model="other", prompt="a"), False)
        assert [j.steer.param for j in jobs] == [45.0, None, None] and srv.fingerprint == c.fp
        return eq(srv.batcher(jobs[1])["completion_tokens"] <= 2, True)
    finally: srv.batcher.close()

@recipe("serve.make_app")
def _(c, f):
    from fastapi.testclient import TestClient
    srv = c.server()
    try:
        with TestClient(f(srv)) as client:
            assert client.get("/v1/models").json()["data"][0]["id"] == "tiny"
            assert client.get("/v1/steering").json()["data"][0]["method"] == "ss"
            r = client.post("/v1/chat/completions", json=dict(model="tiny", messages=_msgs(), max_tokens=2, steering={"method": "ss"}))
            assert r.status_code == 200, r.text
            assert r.json()["steerkit"]["param"] == 90.0
            bad = client.post("/v1/completions", json=dict(model="tiny", prompt="a", n=2))
            assert bad.status_code == 400 and bad.json()["error"]["param"] == "n"
            return r.json()
    finally: srv.batcher.close()

@recipe("serve.serve")
def _(c, f):
    "Everything `serve` does up to `uvicorn.run`, which here records the app instead of serving forever."
    import uvicorn
    ran = []
    c.mp.setattr(uvicorn, "run", lambda app, **kw: ran.append((app, kw)))
    f(str(c.tiny_dir), [c.ss_dir], port=1, frozen=True)
    app, kw = ran[0]
    app.state.server.batcher.close()
    assert kw == dict(host="127.0.0.1", port=1, log_level="warning")
    return eq([e["id"] for e in app.state.server.catalog.describe()], [f"ss-{K.methods.Vectors.load(c.ss_dir).key[:8]}"])

@recipe("serve.bench_clients")
def _(c, f):
    "A real server on a free local port, in a thread, for the duration of the call."
    import uvicorn
    for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"): c.mp.delenv(k, raising=False)
    c.mp.setenv("NO_PROXY", "127.0.0.1,localhost")
    srv, port = c.server(), free_port()
    us = uvicorn.Server(uvicorn.Config(K.serve.make_app(srv), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=us.run, daemon=True); th.start()
    try:
        t0 = time.time()
        while not us.started:
            assert th.is_alive() and time.time() - t0 < 60, "the test server did not start"
            time.sleep(0.05)
        r = f(f"http://127.0.0.1:{port}/v1", "tiny", PROMPTS, n_clients=2, n_requests=1, steering={"method": "ss"}, max_tokens=2)
    finally:
        us.should_exit = True; th.join(30); srv.batcher.close()
    assert r["requests"] == 2 and r["max_batch"] >= 1
    return r


# bench ----------------------------------------------------------------------------------------------------------------
RECIPES.update({
    "bench.machine": lambda c, f: check(f(), lambda d: d["cores"] >= 1 and d["torch"] == torch.__version__),
    "bench.fixed_generate": lambda c, f: check(f(c.m, c.enc, 3), lambda s: s.shape == (2, c.enc["input_ids"].shape[1] + 3)),
    "bench.seconds": lambda c, f: check(f(lambda: time.sleep(0.01)), lambda t: 0.005 <= t < 5),
    "bench.throughput": lambda c, f: check(f(c.m, c.tok, {"ss": c.ss_m}, PROMPTS, batch_sizes=(1, 2), max_new_tokens=2, repeats=1, progress=False),
                                           lambda d: len(d) == 4 and (d[d.method == "none"].ratio == 1).all()),
    "bench.peer_comparison": lambda c, f: check(f(c.m, c.tok, c.plane.r(1, "input_layernorm"), 1, PROMPTS, batch_size=2, max_new_tokens=2, repeats=1),
                                                lambda d: d["batch"] == 2 and isinstance(d["same_tokens"], bool)),
    "bench.sweep_speedup": lambda c, f: check(f(c.m, c.tok, c.ss_m, "Hi", [0, 90], max_new_tokens=2, repeats=1), lambda d: d["values"] == 2 and d["speedup"] > 0),
    "bench.capture_cost": lambda c, f: check(f(c.m, c.tok, PROMPTS, batch_size=2, repeats=1), lambda d: d["cost"] > 0),
    "bench.loglog_slope": lambda c, f: eq(f([1, 2, 4], [3, 12, 48]), pytest.approx(2.0)),
    "bench.scaling": lambda c, f: check(f(c.m, c.tok, c.ss_m, PROMPTS, "prompts", [1, 2], base=dict(prompts=1, tokens=2, angles=1)),
                                        lambda d: d["size"].tolist() == [1, 2] and d.slope.notna().all()),
    "bench.peak_memory": lambda c, f: check(f(lambda: torch.zeros(1 << 20)), lambda d: set(d) == {"rss_before_mb", "peak_mb"}),
    "bench.profile_generation": lambda c, f: check(f(c.m, c.enc, c.ss_m, max_new_tokens=2, top=3), lambda d: len(d) == 3 and (d.self_ms >= 0).all()),
})


# paperscale -----------------------------------------------------------------------------------------------------------
def _forced(model, tok, word):
    "`model` (a fresh tiny model) made to write `word` token by token, then stop."
    ids, step = tok(word, add_special_tokens=False)["input_ids"] + [tok.eos_token_id], [0]
    def bias(mod, args, out):
        out = out.clone(); out[:, -1, ids[min(step[0], len(ids) - 1)]] += 1e4; step[0] += 1; return out
    model.lm_head.register_forward_hook(bias)
    return model

def _offline(c):
    c.mp.setenv("HF_HUB_OFFLINE", "1")

RECIPES.update({
    "paperscale.harmbench_prompt": lambda c, f: check(f(None, "Do X", "Here is X"), lambda s: "Behavior:\nDo X\n\nGeneration:\nHere is X" in s),
    "paperscale.llamaguard_prompt": lambda c, f: check(f(c.tok, "Do X", "Here is X"), lambda s: "Do X" in s and "Here is X" in s),
    "paperscale.parse_yes_no": lambda c, f: eq([f("Yes"), f("no")], [1.0, 0.0]),
    "paperscale.parse_guard": lambda c, f: eq([f("unsafe\nS1"), f("safe")], [1.0, 0.0]),
    "paperscale.Judge": lambda c, f: eq(list(f("harmbench", _forced(c.fresh(), c.tok, "Yes"), c.tok)(["Do X"], ["Here is X"])), [1.0]),
    "paperscale.JudgeUnavailableError": lambda c, f: (_offline(c), raises(f, K.paperscale.Judge.load, "harmbench"))[1],
    "paperscale.tiny_items": lambda c, f: eq(f("tinyMMLU", [dict(question="q", choices=["a", "b"], answer=1)]), [dict(question="q", options=["a", "b"], answer=1)]),
    "paperscale.tiny_accuracy": lambda c, f: check(f(c.m, c.tok, ["tinyMMLU"], dict(tinyMMLU=[dict(question="2+2?", choices=["4", "5"], answer=0)])),
                                                   lambda d: set(d) == {"tinyMMLU"} and d["tinyMMLU"] in (0.0, 1.0)),
    "paperscale.preflight": lambda c, f: (_offline(c), eq(f(["harmless"]), dict(harmless=347)))[1],
})

# ------------------------------------------------------------------------------------------------------ skips and bugs
SKIP = {   # 'module.name' -> why it gets no call here
    "organism.build_organism": "loads the embedded SmolLM2 (hard-coded, twice), LoRA-trains it and evaluates it: minutes",
    "organism.record_evaluation": "loads the embedded SmolLM2 twice and evaluates the organism on every evaluation set: minutes",
}

XFAIL = {}   # 'module.name' -> "BUG: ..." for a public callable that fails when called correctly


# ---------------------------------------------------------------------------------------------------------------- test 2
@pytest.mark.parametrize("key", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=XFAIL[k])) if k in XFAIL else k
                                 for k in RECIPES])
def test_public_call(key, ctx, tmp_path, monkeypatch):
    mod, name = key.split(".", 1)
    obj = getattr(importlib.import_module(f"steerkit.{mod}"), name)
    ctx.tmp, ctx.mp = tmp_path, monkeypatch
    try: RECIPES[key](ctx, obj)
    finally: ctx.tmp = ctx.mp = None


# ---------------------------------------------------------------------------------------------------------------- test 3
def test_every_public_callable_is_covered():
    pub = public_callables()
    missing = sorted(set(pub) - set(RECIPES) - set(SKIP))
    assert not missing, f"public callables with neither a recipe in RECIPES nor a reason in SKIP: {missing}"
    stale = sorted((set(RECIPES) | set(SKIP) | set(XFAIL)) - set(pub))
    assert not stale, f"RECIPES / SKIP / XFAIL name things that are not public callables: {stale}"
    assert not set(RECIPES) & set(SKIP), f"both a recipe and a skip reason: {sorted(set(RECIPES) & set(SKIP))}"
    assert all(isinstance(v, str) and v.strip() for v in SKIP.values())
