"The README's usage example runs as written and does what it says."
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1]/"README.md"

def test_readme_example_runs(capsys):
    block = re.search(r"## Using the package.*?```python\n(.*?)```", README.read_text(), flags=re.S).group(1)
    ns = {}
    exec(compile(block, "README.md", "exec"), ns)
    df, plane = ns["df"], ns["plane"]
    assert len(df) == 4 and set(df.value) == {0, 90}
    assert len(plane.L_disc) > 0
    # SS at 0 degrees is the identity: the same text as the unsteered model
    from steerkit.generate import generate
    base = generate(ns["model"], ns["tok"], list(ns["harm_test"]["prompt"]), max_new_tokens=16, progress=False)
    from steerkit.generate import same_text
    assert same_text(df[df.value == 0].reset_index(drop=True), base).all()    # up to a rounding tie, see 07_generate
