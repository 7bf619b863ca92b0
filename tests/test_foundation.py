"Foundation end to end: model loading, adapters on every tiny family, padding-invariant capture, the CLI."
import subprocess, sys
from pathlib import Path
import pytest
import fastcore.test as fct
from steerkit.models import load_model, tiny_model, TINY_FAMILIES, ModelUnavailableError, chat, encode, rtol
from steerkit.adapters import adapter, UnsupportedArchitectureError, NORM_SITES
from steerkit.capture import capture, padding_gap
from conftest import steerkit_here

PROMPTS = ["Hi", "Write a short poem about the sea and the sky.", "What is 7 times 6?", "Name a fruit."]

@pytest.fixture(scope="module")
def embedded(): return load_model()

@pytest.mark.parametrize("fam", TINY_FAMILIES)
def test_adapter_every_family(fam):
    m, tok = tiny_model(fam)
    ad = adapter(m)
    fct.test_eq(ad.norm_sites, NORM_SITES if fam.startswith("gemma") else NORM_SITES[:2])
    acts = capture(m, tok, PROMPTS, sites=ad.sites, layers=[0, 3], progress=False)
    fct.test_eq(acts.at(3, "attn_heads").shape, (4, ad.n_heads * ad.head_dim))
    fct.test_eq(acts.at(0, "mlp_act").shape[1], m.config.intermediate_size)
    for s in ("resid_in", "resid_out", "mlp_out", "attn_out") + ad.norm_sites:
        fct.test_eq(acts.at(0, s).shape, (4, 64))

@pytest.mark.parametrize("fam", ["llama", "gemma2", "qwen2"])
def test_padding_invariance_tiny(fam):
    m, tok = tiny_model(fam)
    assert padding_gap(m, tok, PROMPTS, sites=adapter(m).sites) < rtol()

def test_padding_invariance_embedded(embedded):
    m, tok = embedded
    gap = padding_gap(m, tok, PROMPTS)
    assert gap < rtol(), gap
    # and the padded batch really is padded: the prompts have different lengths
    enc = encode(tok, chat(tok, PROMPTS))
    assert (enc["attention_mask"].sum(1) != enc["attention_mask"].shape[1]).any()

def test_embedded_model_answers(embedded):
    m, tok = embedded
    enc = encode(tok, chat(tok, "What is the capital of France?"))
    out = m.generate(**enc, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, enc["input_ids"].shape[1]:])

def test_offline_hub_id_clear_error():
    with pytest.raises(ModelUnavailableError, match="huggingface-cli download"):
        load_model("meta-llama/Llama-3.2-1B-Instruct", local_files_only=True)

def test_unsupported_architecture_names_what_is_missing():
    from transformers import GPT2Config, GPT2LMHeadModel
    m = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100))
    with pytest.raises(UnsupportedArchitectureError, match="normalization modules"): adapter(m)

def test_bad_layer_index_error():
    m, tok = tiny_model("llama")
    with pytest.raises(IndexError, match="has 4 layers"): capture(m, tok, PROMPTS, layers=[4])

def test_cli_summary_runs_and_reports(tmp_path):
    out = tmp_path/"s.csv"
    exe = Path(sys.executable).with_name("steerkit")      # the console script installed with the package
    r = subprocess.run([str(exe), "summary", "--n", "4", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    import pandas as pd
    df = pd.read_csv(out)
    fct.test_eq(len(df), 60)
    assert df.mean_norm.gt(0).all() and df.separation.between(0, 1).all()

def test_cli_bad_model_exits_2():
    r = steerkit_here("summary", "--model", "/no/such/dir")
    fct.test_eq(r.returncode, 2)
    assert "error" in r.stderr
