"The README's usage example runs as written and does what it says."
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1]/"README.md"

def test_readme_examples_run(capsys):
    """The first block (SS calibrated and swept) runs and does what it says; the second (a registry method fitted on A/B
    items) runs after it, in the same namespace as a reader's session, and moves the A/B score (a little: CAA on a 135M
    model)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    first = re.search(r"## Using the package.*?```python\n(.*?)```", README.read_text(), flags=re.S).group(1)
    assert len(blocks) >= 2 and blocks[0] == first
    ns = {}
    exec(compile(first, "README.md", "exec"), ns)
    df, plane = ns["df"], ns["plane"]
    assert len(df) == 4 and set(df.value) == {0, 90}
    assert len(plane.L_disc) > 0
    # SS at 0 degrees is the identity: the same text as the unsteered model
    from steerkit.generate import generate
    base = generate(ns["model"], ns["tok"], list(ns["harm_test"]["prompt"]), max_new_tokens=16, progress=False)
    from steerkit.generate import same_text
    assert same_text(df[df.value == 0].reset_index(drop=True), base).all()    # up to a rounding tie, see 06_generate
    exec(compile(blocks[1], "README.md", "exec"), ns)
    before, after = map(float, capsys.readouterr().out.strip().splitlines()[-1].split())
    assert 0 < before < 1 and 0 < after < 1 and abs(after - before) > 1e-3


def test_readme_pairs_example_runs(capsys):
    "The block of 'Your own pairs' runs: CAA fitted on 8 sentiment pairs, its multiplier chosen on 8 others, 4 answers scored."
    block = re.search(r"## Your own pairs.*?```python\n(.*?)```", README.read_text(), flags=re.S).group(1)
    ns = {}
    exec(compile(block, "README.md", "exec"), ns)
    fz = ns["fz"]
    assert fz.meta["param"] in (0.0, 2.0) and fz.meta["n_fit"] == 8 and fz.meta["n_held"] == 8
    assert abs(fz.meta["sweep"][0]["effect"]) < 1e-3                 # m = 0: no effect
    assert len(ns["ans"]) == 4 and all(isinstance(r, str) for r in ns["ans"].response)
