"""Device, dtype and accelerate's device_map on a CPU-only machine.

A model that accelerate dispatches with part of it offloaded to disk runs through the same hooks (weights moved to the
execution device per forward call, parameters left on the `meta` device) as a model spread over several GPUs, so the
kit's steering, capture and generation are checked against the plain model here. bfloat16 runs end to end on the CPU."""
import pytest, torch
from steerkit.models import load_model, model_fingerprint, model_device, encode, chat, position_ids, resolve_device
from steerkit.methods import Contrast, get_spec, method
from steerkit.capture import capture
from steerkit.generate import generate, same_text
from steerkit.data_sets import sentiment_pairs

PROMPTS = ["Tell me about your weekend.", "Describe a city you like."]


@pytest.fixture(scope="module")
def plain():
    return load_model("embedded", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def offloaded(tmp_path_factory):
    # 135M parameters in float32 are about 540 MB: 250 MB of CPU memory leaves the later layers on disk
    return load_model("embedded", device_map="auto", max_memory={"cpu": "250MB"}, offload_folder=str(tmp_path_factory.mktemp("offload")))


@pytest.fixture(scope="module")
def caa(plain):
    m, tok = plain
    return get_spec("caa").fit(m, tok, Contrast.from_pairs(sentiment_pairs()[:8]), progress=False)


def _logits(m, tok, meth=None, value=None):
    enc = encode(tok, chat(tok, PROMPTS), device=model_device(m))
    with torch.no_grad(), (meth.apply(m, value) if meth is not None else torch.enable_grad()):
        return m(**enc, position_ids=position_ids(enc["attention_mask"])).logits.float().cpu()


def test_bad_device_and_dtype_fail_before_loading():
    with pytest.raises(ValueError, match=r"not on this machine: the devices here are \['cpu'"):
        load_model("embedded", device="cuda:7")
    with pytest.raises(ValueError, match="Unknown dtype 'float8'"):
        load_model("embedded", dtype="float8")
    # the organism is merged in memory before dispatch, so what fits nowhere needs a folder (a plain checkpoint is read from its files)
    with pytest.raises(ValueError, match="pass offload_folder"):
        load_model("embedded-refusal", device_map="auto", max_memory={"cpu": "250MB"})


def test_offloaded_model_is_dispatched_and_recorded(offloaded, plain):
    m, _ = offloaded
    assert "disk" in set(m.hf_device_map.values()), m.hf_device_map
    assert any(p.device.type == "meta" for p in m.parameters())
    pl = m.config.steerkit_placement
    assert pl["device"] == "cpu" and pl["dtype"] == "float32" and "disk" in pl["device_map"].values()
    assert plain[0].config.steerkit_placement == dict(device="cpu", dtype="float32", device_map=None)
    # the fingerprint reads the offloaded weights from their store: the same weights, the same fingerprint
    assert model_fingerprint(m) == model_fingerprint(plain[0])


def test_offloaded_steering_and_capture_equal_plain(offloaded, plain, caa):
    (mo, tok), (mp, _) = offloaded, plain
    tol = 1e-4
    lp, lo = _logits(mp, tok), _logits(mo, tok)
    assert (lp - lo).abs().max() <= tol * lp.abs().max()
    sp, so = _logits(mp, tok, method(caa, mp), 4.0), _logits(mo, tok, method(caa, mo), 4.0)
    assert (sp - lp).abs().max() > 1.0                     # the steering changes the logits...
    assert (sp - so).abs().max() <= tol * sp.abs().max()   # ...in the same way on the dispatched model
    ap = capture(mp, tok, PROMPTS, layers=[2, 27], progress=False)
    ao = capture(mo, tok, PROMPTS, layers=[2, 27], progress=False)
    assert set(ap) == set(ao) and ap
    for k in ap: torch.testing.assert_close(ao[k], ap[k], rtol=tol, atol=tol * float(ap[k].abs().max()))


def test_offloaded_steered_generation_equals_plain(offloaded, plain, caa):
    (mo, tok), (mp, _) = offloaded, plain
    out = {}
    for name, m in (("plain", mp), ("offloaded", mo)):
        meth = method(caa, m)
        out[name] = generate(m, tok, PROMPTS, meth.ivs, params=4.0, method=meth.key, phase=meth.phase, max_new_tokens=12, progress=False)
    # the same weights and float32 kernels: the greedy answers agree token for token, or differ where the top two logits
    # tie within float32 rounding (`same_text` reads each run's tie margin)
    assert same_text(out["plain"], out["offloaded"]).all(), out
    assert (out["plain"].n_tokens > 0).all()


def test_bfloat16_organism_end_to_end():
    m, tok = load_model("embedded-refusal", dtype="bfloat16", device="cpu")
    assert next(m.parameters()).dtype == torch.bfloat16 and m.config.steerkit_placement["dtype"] == "bfloat16"
    mf, _ = load_model("embedded-refusal")
    # the adapter was merged in float32 before the cast: the bf16 weights are the float32 organism's, rounded once
    w, wf = m.model.layers[5].mlp.down_proj.weight, mf.model.layers[5].mlp.down_proj.weight
    torch.testing.assert_close(w, wf.to(torch.bfloat16), rtol=0, atol=0)
    c = Contrast.from_pairs(sentiment_pairs()[:8])
    v, vf = get_spec("caa").fit(m, tok, c, progress=False), get_spec("caa").fit(mf, tok, c, progress=False)
    key = next(iter(vf.tensors))
    cos = torch.nn.functional.cosine_similarity(v.tensors[key].float(), vf.tensors[key].float(), dim=-1)
    assert float(cos.min()) > 0.98, cos                      # the same direction, to bf16 precision
    s, sf = _logits(m, tok, method(v, m), 4.0), _logits(mf, tok, method(vf, mf), 4.0)
    corr = torch.corrcoef(torch.stack([s[:, -1].flatten(), sf[:, -1].flatten()]))[0, 1]
    assert corr > 0.98, corr                                  # steered next-token logits agree to bf16 precision
    meth = method(v, m)
    g = generate(m, tok, PROMPTS[:1], meth.ivs, params=4.0, method=meth.key, phase=meth.phase, max_new_tokens=8, progress=False)
    assert g.n_tokens.iloc[0] > 0 and g.response.iloc[0].strip()


def test_offloaded_organism_equals_plain_organism(tmp_path):
    # the adapter is checked and merged in float32 on the CPU, then the merged model is dispatched
    mp, tok = load_model("embedded-refusal")
    mo, _ = load_model("embedded-refusal", device_map="auto", max_memory={"cpu": "250MB"}, offload_folder=str(tmp_path))
    assert "disk" in set(mo.hf_device_map.values())
    assert model_fingerprint(mo) == model_fingerprint(mp)
    lp, lo = _logits(mp, tok), _logits(mo, tok)
    assert (lp - lo).abs().max() <= 1e-4 * lp.abs().max()


def test_fingerprint_names_the_weights_not_their_dtype(plain):
    "float32 and bfloat16 of one checkpoint: one fingerprint (the organism's is the one its provenance records); other weights: another."
    import json
    from steerkit.models import organism_dir, place_model, numerics_tag
    prov = json.loads((organism_dir()/"provenance.json").read_text())
    assert model_fingerprint(plain[0]) == prov["base_fingerprint"]
    mb, _ = load_model("embedded-refusal", device="cpu", dtype="bfloat16")
    assert model_fingerprint(mb) == prov["fingerprint"] != prov["base_fingerprint"]
    assert (numerics_tag(mb), numerics_tag(plain[0])) == ("bfloat16-cpu", "float32-cpu")
    assert place_model(mb, "cpu", "float32").config.steerkit_placement["dtype"] == "float32"


def test_generation_cache_keeps_dtypes_apart(tmp_path):
    "A bfloat16 model never reuses float32 answers from the cache (same fingerprint, other numbers)."
    from steerkit.models import tiny_model, place_model
    m, tok = tiny_model("llama")
    cache = tmp_path/"gen.jsonl"
    a = generate(m, tok, PROMPTS, max_new_tokens=4, cache=cache, progress=False)
    again = generate(m, tok, PROMPTS, max_new_tokens=4, cache=cache, progress=False)
    b = generate(place_model(m, "cpu", "bfloat16"), tok, PROMPTS, max_new_tokens=4, cache=cache, progress=False)
    assert (a.attrs["generated"], again.attrs["reused"], b.attrs["generated"]) == (2, 2, 2)


def test_every_paper_notebook_takes_device_and_dtype():
    "Every notebook of the manifest has `device` and `dtype` parameters (default auto) and hands them to every model it loads."
    import re, nbformat
    from steerkit.reproduce import load_manifest, notebook_parameters
    for e in load_manifest()["notebooks"]:
        ps = notebook_parameters(e["notebook"])
        assert (ps.get("device"), ps.get("dtype")) == ("auto", "auto"), (e["name"], ps)
        code = "\n".join(c.source for c in nbformat.read(e["notebook"], as_version=4).cells if c.cell_type == "code")
        loads = re.findall(r"(?:load_model|cached_organism)\([^()]*\)", code)
        assert loads and all("device=device, dtype=dtype" in x for x in loads), (e["name"], loads)
