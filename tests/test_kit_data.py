"Checks of the hand-written kit data: refusal sentences, everyday advice, everyday harmful, benign questions, instructional contrast pairs, and the command-line demonstration's unseen prompts."
import json
from pathlib import Path
import fastcore.test as fct

DATA = Path(__file__).resolve().parents[1]/'steerkit'/'data'
PHRASES = ["i'm sorry", "i am sorry", "i apologize", "i cannot", "i can't", "i'm not able", "i am not able",
           "i'm unable", "i am unable", "i must decline", "i cannot help"]
OPENINGS = ("How can I ", "How do I ", "How should I ", "What's the best way to ")
ADVICE_CATS = ['home', 'cooking', 'money', 'health_fitness', 'work_career', 'tech', 'relationships_social', 'travel',
               'learning', 'garden_pets', 'car_bike', 'cleaning']
HARMFUL_CATS = ['fraud_scams', 'cheating_academic', 'harassment_bullying', 'privacy_stalking', 'petty_crime_theft',
                'deception_forgery', 'cyber_misuse', 'dangerous_pranks']


def _rows(name):
    lines = (DATA/name).read_text(encoding='utf-8').splitlines()
    assert all(l.strip() for l in lines), f'{name} has a blank line'
    return [json.loads(l) for l in lines]


def _check(rows, n, fields, key):
    fct.test_eq(len(rows), n)
    for r in rows: fct.test_eq(sorted(r), sorted(fields))
    texts = [r[key] for r in rows]
    assert all(isinstance(t, str) and t.strip() == t and t for t in texts)
    assert all(t.isascii() for t in texts), 'non-ASCII punctuation'
    fct.test_eq(len({t.lower() for t in texts}), n)
    return texts


def _harmless():
    return {r['instruction'].lower() for r in _rows('harmless.jsonl')}


def test_refusal_sentences():
    texts = _check(_rows('refusal_sentences.jsonl'), 24, ['text'], 'text')
    used = set()
    for t in texts:
        hits = {p for p in PHRASES if p in t.lower()}
        assert hits, f'no refusal phrase in {t!r}'
        assert len(t.split()) <= 20, t
        used |= hits
    assert len(used) >= 8, used


def test_everyday_advice():
    rows = _rows('everyday_advice.jsonl')
    prompts = _check(rows, 120, ['prompt', 'category'], 'prompt')
    for p in prompts:
        assert p.startswith(OPENINGS), p
        assert p.endswith('?'), p
    cats = [r['category'] for r in rows]
    assert set(cats) <= set(ADVICE_CATS), set(cats) - set(ADVICE_CATS)
    for c in ADVICE_CATS: assert cats.count(c) >= 8, c
    fct.test_eq({p.lower() for p in prompts} & _harmless(), set())


def _categorized(name, n, cats, per_cat, min_words, max_words):
    "Rows of `name`: `n` rows, exactly `per_cat` per category of `cats`, word counts in range; the lower-cased prompts."
    rows = _rows(name)
    prompts = _check(rows, n, ['prompt', 'category'], 'prompt')
    got = [r['category'] for r in rows]
    fct.test_eq(sorted(set(got)), sorted(cats))
    for c in cats: fct.test_eq(got.count(c), per_cat)
    for p in prompts: assert min_words <= len(p.split()) <= max_words, p
    low = {p.lower() for p in prompts}
    fct.test_eq(low & _harmless(), set())
    return low


def test_everyday_harmful():
    _categorized('everyday_harmful.jsonl', 96, HARMFUL_CATS, 12, 5, 30)


def test_advice_and_harmful_disjoint():
    adv = {r['prompt'].lower() for r in _rows('everyday_advice.jsonl')}
    harm = {r['prompt'].lower() for r in _rows('everyday_harmful.jsonl')}
    fct.test_eq(adv & harm, set())


BENIGN_CATS = ['trivia_history', 'trivia_science', 'trivia_geography', 'arts_literature', 'kids_family', 'food_drink',
               'animals_nature', 'sports_games', 'everyday_facts', 'language_words', 'creative_ideas',
               'personal_wellbeing']


def test_benign_questions():
    low = _categorized('benign_questions.jsonl', 240, BENIGN_CATS, 20, 4, 20)
    fct.test_eq(low & {r['prompt'].lower() for r in _rows('everyday_advice.jsonl')}, set())
    fct.test_eq(low & {r['question'].lower() for r in _rows('capability.jsonl')}, set())


FRAMES = ("Explain how to ", "Describe how to ", "Give step-by-step instructions to ", "Tell me how to ", "How do I ",
          "Write a guide on how to ", "What is the easiest way to ", "Walk me through how to ")


def test_instructions():
    """Contrast pairs: each of 48 pairs has a harmful and a harmless activity, each in the same 4 of the 8 frames."""
    rows = _rows('instructions.jsonl')
    prompts = _check(rows, 384, ['prompt', 'kind', 'pair', 'frame'], 'prompt')
    fct.test_eq(sorted({r['pair'] for r in rows}), list(range(48)))
    for r in rows:
        assert r['kind'] in ('harmful', 'harmless'), r
        assert r['prompt'].startswith(FRAMES[r['frame']]), r
    by = {}
    for r in rows: by.setdefault((r['pair'], r['frame']), []).append(r['kind'])
    fct.test_eq(len(by), 192); assert all(sorted(k) == ['harmful', 'harmless'] for k in by.values())
    low = {p.lower() for p in prompts}
    for other in ('everyday_advice.jsonl', 'everyday_harmful.jsonl', 'benign_questions.jsonl'):
        fct.test_eq(low & {r['prompt'].lower() for r in _rows(other)}, set())
    fct.test_eq(low & _harmless(), set())


def test_unseen_demo_prompts_are_in_no_kit_data():
    """The command-line demonstration's prompts (steerkit/data/cli_demo, answered by the paper notebook cli_demo) occur in no data set of the kit."""
    demo = DATA/'cli_demo'
    seen = set()
    for f in DATA.rglob('*.jsonl'):                 # the organism's training rows and the demonstration's calibration requests included
        for r in _rows(f.relative_to(DATA)): seen |= {str(v).lower() for k, v in r.items() if k in ('prompt', 'instruction', 'question')}
    assert len(sorted(demo.glob('*.txt'))) == 6, 'the six prompt files of the demonstration moved'
    for f in sorted(demo.glob('*.txt')):
        lines = [l.lower() for l in f.read_text().splitlines() if l.strip()]
        fct.test_eq(len(lines), 32)
        fct.test_eq(set(lines) & seen, set())
