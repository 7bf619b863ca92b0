"""The house rules a newcomer relies on: notebooks stored as Jupyter writes them, fastcore-sized exported cells, short
library lines, and modules layered in notebook order (a module imports only from notebooks before its own, so there is
no import cycle) with no private name imported across modules. Static checks: nothing here runs a model."""
import ast, json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB, NBS = ROOT/"steerkit", ROOT/"nbs"
NOTEBOOKS = sorted(NBS.glob("*.ipynb")) + sorted((NBS/"paper").glob("*.ipynb"))
MODULES = sorted(f for f in LIB.glob("*.py") if f.stem not in ("_modidx", "__init__"))


def _cells(nb: Path) -> list: return json.loads(nb.read_text())["cells"]


def _exported(nb: Path):
    for i, c in enumerate(_cells(nb)):
        s = "".join(c["source"])
        if c["cell_type"] == "code" and re.match(r"#\|\s*export", s): yield i, s


def _module_of(nb: Path):
    for c in _cells(nb):
        m = re.search(r"#\|\s*default_exp\s+(\S+)", "".join(c["source"]))
        if m: return m.group(1)


ORDER = {_module_of(nb): nb.name for nb in sorted(NBS.glob("[0-9]*.ipynb")) if _module_of(nb)}


def _imports(mod: Path) -> list:
    "(imported steerkit module, names) for every import in `mod`, module level and inside functions."
    out = []
    for n in ast.walk(ast.parse(mod.read_text())):
        if isinstance(n, ast.ImportFrom):
            name = n.module or ""
            if n.level: name = name if name else ""
            if n.level or name.startswith("steerkit"):
                sub = name.removeprefix("steerkit").lstrip(".")
                if sub: out.append((sub.split(".")[0], [a.name for a in n.names]))
                else: out += [(a.name, []) for a in n.names]          # from steerkit import x / from . import x
        elif isinstance(n, ast.Import):
            out += [(a.name.split(".")[1], []) for a in n.names if a.name.startswith("steerkit.")]
    return out


def test_notebook_sources_are_lists():
    bad = [f"{nb.relative_to(NBS)} cell {i}" for nb in NOTEBOOKS for i, c in enumerate(_cells(nb))
           if not isinstance(c["source"], list)]
    assert not bad, f"cell sources stored as one string (Jupyter writes a list of lines): {bad[:10]}"


def test_exported_cells_at_most_40_lines():
    "The whole cell, its `#| export` line included."
    bad = [f"{nb.name} cell {i}: {len(s.rstrip().splitlines())} lines" for nb in NOTEBOOKS for i, s in _exported(nb)
           if len(s.rstrip().splitlines()) > 40]
    assert not bad, f"exported cells over 40 lines (split them, one definition per cell): {bad}"


def test_library_lines_at_most_120():
    "Every line we write. nbdev writes `__all__` itself, wrapped at 120 without counting its `__all__ = ` prefix."
    bad = [f"{m.name}:{k}" for m in MODULES for k, l in enumerate(m.read_text().splitlines(), 1)
           if len(l) > 120 and not l.startswith("__all__ = ")]
    assert not bad, f"{len(bad)} library lines over 120 characters, e.g. {bad[:10]}"


def test_the_checks_see_imports(tmp_path):
    "The import walker finds relative, absolute and function-level imports; every module has a numbered notebook."
    f = tmp_path/"m.py"
    f.write_text("from .models import load_model\nimport os\ndef g():\n    from steerkit.serve import _x, y\n"
                 "    import steerkit.cli\n    from steerkit import metrics\n")
    assert _imports(f) == [("models", ["load_model"]), ("serve", ["_x", "y"]), ("cli", []), ("metrics", [])]
    assert {m.stem for m in MODULES} <= set(ORDER), f"modules without a numbered notebook: {({m.stem for m in MODULES} - set(ORDER))}"


def test_no_private_name_imported_across_modules():
    bad = [f"{m.stem} imports {n} from {src}" for m in MODULES for src, names in _imports(m)
           for n in names if n.startswith("_") and src != m.stem]
    assert not bad, f"private names crossing modules (make them public, or move the code): {bad}"


def test_modules_import_only_earlier_notebooks():
    "Notebook order is dependency order, so there is no import cycle: each module imports only earlier notebooks' modules."
    bad = sorted({f"{m.stem} ({ORDER[m.stem]}) imports {src} ({ORDER.get(src)})" for m in MODULES for src, _ in _imports(m)
                  if src in ORDER and src != m.stem and ORDER[src] > ORDER[m.stem]})
    assert not bad, f"imports from later notebooks: {bad}"
