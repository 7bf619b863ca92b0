"The exported package has no undefined names (a notebook-only import shows up as one) and no unused imports."
import subprocess, sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1]/"steerkit"


def test_pyflakes_clean():
    files = sorted(str(p) for p in PKG.glob("*.py") if p.name != "_modidx.py")
    r = subprocess.run([sys.executable, "-m", "pyflakes", *files], capture_output=True, text=True)
    assert r.returncode == 0, "fix these in the notebooks, then nbdev_export:\n" + r.stdout + r.stderr
