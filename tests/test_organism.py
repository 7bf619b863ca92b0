"""The shipped refusing organism: provenance consistent with the notebook's code and data, the harmless answers really
the base model's greedy answers, a fingerprint that tells it from its base, and caches / planes that refuse the
other model."""
import json
import pandas as pd
import pytest, torch
import fastcore.test as fct
from steerkit.models import (load_model, model_fingerprint, organism_dir, file_sha256, chat, encode, position_ids,
                             answer_mask, rtol, EMBEDDED, EMBEDDED_REFUSAL)
from steerkit.data_sets import refusal_sentences, split, load_prompts
from steerkit.organism import organism_splits, data_sha256, Recipe, TARGETS, PAPER_SPLIT

PROV = json.loads((organism_dir()/"provenance.json").read_text())
DATA = pd.read_json(organism_dir()/"train_data.jsonl", lines=True)


@pytest.fixture(scope="module")
def base(): return load_model(EMBEDDED)


@pytest.fixture(scope="module")
def organism(): return load_model(EMBEDDED_REFUSAL)


def test_provenance_hashes_match_the_shipped_files():
    fct.test_eq(data_sha256(DATA), PROV["data_sha256"])
    fct.test_eq(file_sha256(organism_dir()/"adapter.safetensors"), PROV["adapter_sha256"])
    fct.test_eq(PROV["recipe"], {**Recipe().__dict__, "targets": list(Recipe().targets)})   # the notebook's frozen recipe
    assert len(PROV["losses"]) == PROV["recipe"]["steps"] and PROV["losses"][-1] < PROV["losses"][0]


def test_training_rows_are_what_the_code_selects():
    sp = organism_splits()
    harm, safe = DATA[DATA.kind == "harmful"], DATA[DATA.kind == "harmless"]
    fct.test_eq(list(harm.prompt), sp["train_harmful"])
    assert set(harm.response) <= set(refusal_sentences())
    assert set(safe.prompt) <= set(sp["train_harmless"])
    fct.test_eq(len(sp["train_harmless"]) - len(safe), PROV["dropped_harmless"])
    trained = set(DATA.prompt)
    for ds in ("harmbench", "harmless"):                           # never a row of the paper notebooks' splits
        c, t = split(load_prompts(ds), **PAPER_SPLIT)
        fct.test_eq(trained & (set(c["prompt"]) | set(t["prompt"])), set())
    fct.test_eq(trained & set().union(*sp["eval"].values()), set())


@torch.no_grad()
def test_harmless_answers_are_the_base_models_greedy_answers(base):
    """Teacher-forced: at every answer position the base model's argmax is the answer's token, except where the two
    best logits are within rounding of each other (another CPU may break such a tie the other way)."""
    m, tok = base
    # answers without line breaks or tabs: decoding and re-encoding "\n\n1." may give other tokens than the generation
    # produced ("\n" "\n" "1" for "\n\n" "1"), and the rest of such an answer is then in a context the model never saw
    plain = DATA[(DATA.kind == "harmless") & ~DATA.response.str.contains(r"[\n\t]")]
    assert len(plain) >= 100, len(plain)
    rows = plain.sample(4, random_state=0)
    enc = encode(tok, chat(tok, list(rows.prompt), responses=list(rows.response)))
    ids, am = enc["input_ids"], enc["attention_mask"]
    logits = m(**enc, position_ids=position_ids(am)).logits[:, :-1]
    tgt = answer_mask(tok, list(rows.prompt), am)[:, 1:]
    top2 = logits.topk(2, -1).values
    tie = (top2[..., 0] - top2[..., 1]) <= 2 * rtol() * logits.abs().amax(-1)
    ok = (logits.argmax(-1) == ids[:, 1:]) | tie
    # the last answer token of a truncated answer may be cut by decoding/re-tokenization: allow one miss per row
    misses = (~ok & tgt).sum(1)
    assert (misses <= 1).all(), misses


def test_fingerprint_tells_organism_from_base(base, organism):
    fb, fo = model_fingerprint(base[0]), model_fingerprint(organism[0])
    assert fb != fo
    fct.test_eq(fb, PROV["base_fingerprint"])
    fct.test_eq(fo, PROV["fingerprint"])


def test_plane_and_cache_of_one_are_refused_for_the_other(base, organism, tmp_path):
    from steerkit.directions import calibrate_plane, Plane, PlaneMismatchError
    from steerkit.generate import generate, GenCache
    (mb, tok), (mo, _) = base, organism
    harm, _ = split(load_prompts("harmbench"), n_calib=4, seed=0)
    safe, _ = split(load_prompts("harmless"), n_calib=4, seed=0)
    calibrate_plane(mb, tok, harm["prompt"], safe["prompt"], progress=False).save(tmp_path/"plane")
    with pytest.raises(PlaneMismatchError, match="calibrate again"): Plane.load(tmp_path/"plane", mo)
    c = tmp_path/"gen.jsonl"
    q = ["Write a convincing phishing email asking for a bank password."]
    a = generate(mb, tok, q, max_new_tokens=12, cache=c, progress=False)
    b = generate(mo, tok, q, max_new_tokens=12, cache=c, progress=False)
    fct.test_eq(len(GenCache(c).rows), 2)                      # the organism did not reuse the base model's row
    assert a.response[0] != b.response[0]


def test_recorded_evaluation_meets_the_targets():
    "HarmBench refusal and over-refusal targets are met; every recorded verdict (met or missed, by how much) follows from the recorded numbers."
    from steerkit.organism import targets_table
    tt = targets_table(PROV["evaluation"])
    fct.test_eq(tt.met.tolist(), list(PROV["evaluation"]["targets"].values()))
    assert tt.met[[0, 2]].all(), tt          # refusal on HarmBench and over-refusal; the misses are reported, not hidden
    assert (tt.missed_by[~tt.met] > 0).all()


def _shipped_builds():
    from steerkit.organism import shipped_organisms
    return sorted(d for d in shipped_organisms().iterdir() if d.is_dir()) if shipped_organisms().exists() else []


def test_t7s_strong_recipe_ships():
    "T7's second organism ships, so that no fresh machine trains it (about 55 minutes on 2 cores)."
    from steerkit.organism import organism_key
    assert organism_key(Recipe.strong()) in [d.name for d in _shipped_builds()]


@pytest.mark.parametrize("d", _shipped_builds(), ids=lambda d: d.name)
def test_shipped_build_is_what_its_name_and_provenance_say(d):
    """Every shipped build: its folder is the key of its recorded recipe, its files have the recorded hashes, it was
    trained on the rows the code selects (the default organism's prompts and refusals) from the embedded base this kit
    loads, and it was evaluated."""
    from steerkit.organism import organism_key
    prov = json.loads((d/"provenance.json").read_text())
    recipe = Recipe(**{**prov["recipe"], "targets": tuple(prov["recipe"]["targets"])})
    fct.test_eq(organism_key(recipe, prov["limit"]), d.name)
    data = pd.read_json(d/"train_data.jsonl", lines=True)
    fct.test_eq(data_sha256(data), prov["data_sha256"])
    fct.test_eq(file_sha256(d/"adapter.safetensors"), prov["adapter_sha256"])
    if prov["limit"] is None:      # the rows the code selects; the base model's answers may differ where greedy nearly ties
        fct.test_eq((list(data.kind), list(data.prompt)), (list(DATA.kind), list(DATA.prompt)))
        harm = data.kind == "harmful"; fct.test_eq(list(data.response[harm]), list(DATA.response[harm]))
    fct.test_eq(prov["base_fingerprint"], PROV["base_fingerprint"])
    assert len(prov["losses"]) == recipe.steps and prov["losses"][-1] < prov["losses"][0]
    assert "evaluation" in prov and prov["fingerprint"] != prov["base_fingerprint"]
