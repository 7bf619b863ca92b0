"Pins agree across settings.ini, environment.yml and the installed environment."
import re, configparser
from pathlib import Path
from importlib.metadata import version
import fastcore.test as fct

ROOT = Path(__file__).resolve().parents[1]

def _settings():
    c = configparser.ConfigParser(delimiters=["="]); c.read(ROOT/"settings.ini")
    return c["DEFAULT"]

def _env_pins():
    txt = (ROOT/"environment.yml").read_text()
    pins = [p for p in re.findall(r"^\s+- ([A-Za-z0-9_.\-]+[<>=!~][^\s#]*)\s*$", txt, flags=re.M) if not p.startswith("python=")]
    data = re.search(r"pip install --no-deps (.+)$", txt, flags=re.M).group(1).split()
    return pins, data

def test_requirements_match_environment_yml():
    s = _settings()
    pins, data = _env_pins()
    want = set(s["requirements"].split()) | set(s["dev_requirements"].split())
    fct.test_eq(set(pins), want)
    fct.test_eq(set(data), set(s["data_requirements"].split()) | set(s["peer_requirements"].split()))

def test_nbdev_toolchain_pins():
    s = _settings()
    reqs = s["requirements"].split()
    for pin in ("nbdev==2.4.14", "fastcore>=1.12.3,<2", "execnb>=0.1.16,<0.2", "torch==2.13.0"): assert pin in reqs, pin
    fct.test_eq(s["allowed_cell_metadata_keys"].strip(), "tags")
    fct.test_eq(set(s["tst_flags"].split()), {"notest", "slow"})

def _ok(spec, got):
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version
    return Version(got.split("+")[0]) in SpecifierSet(spec)

def test_installed_versions_satisfy_pins():
    s = _settings()
    for req in s["requirements"].split() + s["data_requirements"].split() + s["peer_requirements"].split():
        name, spec = re.match(r"([A-Za-z0-9_.\-]+)(.*)", req).groups()
        assert _ok(spec, version(name)), f"{name} {version(name)} does not satisfy {spec}"

def test_setup_py_reads_settings():
    txt = (ROOT/"setup.py").read_text()
    assert "pkg_resources" not in txt.replace("no pkg_resources", "")
    assert "3.11" in txt
