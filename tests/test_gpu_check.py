"""tools/gpu_check.py on a CPU-only machine: its dry run (the CPU plays the GPU, tiny sizes) passes every check and
reports the expected rows; without the flag and without CUDA it checks nothing and writes nothing; a failed check
makes the report say FAILED and the exit status 1."""
import importlib.util, os, re, subprocess, sys
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.py"
OPERATOR_NAMES = ["ss", "sas", "aas", "actadd", "dirabl", "add", "scale_units"]


def run(*args, timeout=240):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def table(report: str, heading: str) -> list:
    "The rows (lists of cell strings, header and rule left out) of the first markdown table after `## heading`."
    section = report.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [l for l in section.splitlines() if l.startswith("|")]
    return [[c.strip() for c in r.strip("|").split("|")] for r in rows[2:]]


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "report.md"
    r = run("--dry-run-cpu", "--out", out)
    return r, out


def test_dry_run_passes_every_check(dry):
    r, out = dry
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    text = out.read_text()
    assert text == r.stdout                                   # printed and written: the same report
    assert text.startswith("# GPU check: CPU dry run") and "nothing about GPUs is measured" in text.splitlines()[0]
    checks = table(text, "Checks")
    names = [c[0] for c in checks]
    assert all(c[3] == "ok" for c in checks), [c for c in checks if c[3] != "ok"]
    assert f"Result: **all {len(checks)} checks ok**" in text
    for dt in ("fp32", "bf16"):
        for op in OPERATOR_NAMES: assert f"kernel {op} {dt} vs cpu fp32" in names
    assert len(checks) == 2 * (len(OPERATOR_NAMES) + 2) + 3 + 1 + 3, names
    assert "## Errors" not in text and "## Notes" not in text


def test_dry_run_measured_values_are_within_their_tolerances(dry):
    checks = {c[0]: c for c in table(dry[1].read_text(), "Checks")}
    value = lambda name: float(checks[name][1].split()[0])
    bound = lambda name: float(checks[name][2].split()[1])
    # the CPU plays the device: float32 kernels equal the reference exactly; bfloat16 ones differ by bf16 rounding
    assert value("kernel ss fp32 vs cpu fp32") == 0.0
    assert 0 < value("kernel ss bf16 vs cpu fp32") < 0.02 and bound("kernel ss bf16 vs cpu fp32") == pytest.approx(4 * 2 ** -3.5, rel=1e-2)
    assert value("tiny llama steered logits bf16 vs cpu fp32: pearson r") > 0.98
    assert value("tiny llama steering changes logits fp32: rel_gap steered vs unsteered") > 0.01
    assert value("kv cache steered greedy vs teacher forcing fp32") <= 10 * 2 ** -11.5
    assert "2 rows x 6 steps" in checks["kv cache steered greedy vs teacher forcing fp32"][1]
    assert value("split model: devices in the device map") == 2


def test_dry_run_split_model_goes_to_cpu_and_disk(dry):
    text = dry[1].read_text()
    split = text.split("## Split model\n", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"decoder layers per device: cpu: (\d+), disk: (\d+)\.", split)
    assert m and int(m[1]) >= 1 and int(m[2]) >= 1 and int(m[1]) + int(m[2]) == 4, split
    assert "4 layers" in split and "inputs go to cpu" in split


def test_dry_run_throughput_rows(dry):
    rows = table(dry[1].read_text(), "Throughput")
    assert [tuple(r[:4]) for r in rows] == [("cpu", "bf16", "1", "8"), ("cpu", "bf16", "2", "8"),
                                            ("cpu", "fp32", "1", "8"), ("cpu", "fp32", "2", "8")]
    for r in rows:
        unsteered, steered, ratio = map(float, r[4:])
        assert unsteered > 0 and steered > 0
        assert ratio == pytest.approx(steered / unsteered, rel=0.02, abs=2e-3)


def test_budget_spent_skips_optional_parts(tmp_path):
    out = tmp_path / "r.md"
    r = run("--dry-run-cpu", "--budget", 0, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    text = out.read_text()
    assert "split model: skipped, over the time budget of 0 s" in text and "throughput: skipped" in text
    names = [c[0] for c in table(text, "Checks")]
    assert "kv cache steered greedy vs teacher forcing fp32" in names and not any(n.startswith("split") for n in names)
    assert table(text, "Throughput") == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script would run the real check")
def test_without_cuda_checks_nothing_and_writes_nothing(tmp_path):
    out = tmp_path / "r.md"
    r = run("--out", out, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "no CUDA device" in r.stdout and "nothing was checked" in r.stdout
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_failed_check_says_failed_and_exits_1(tmp_path, monkeypatch):
    g = load_script()
    assert g.Check("x", 0.5, "<=", 0.1).row() == "| x | 0.5 | <= 0.1 | FAILED |"
    assert g.Check("x", 0.05, "<=", 0.1).ok and not g.Check("x", float("nan"), "<=", 0.1).ok and not g.Check("x", 0.5, ">", 0.98).ok
    # a kernel that misses its tolerance and a part that raises: the report names both, the exit status is 1
    def bad_kernels(plan, report): report.checks.append(g.Check("kernel ss fp32 vs cpu fp32", 0.5, "<=", 1e-3))
    def raising(plan, report): raise RuntimeError("CUDA error: out of memory")
    monkeypatch.setattr(g, "check_kernels", bad_kernels)
    monkeypatch.setattr(g, "check_tiny_model", raising)
    monkeypatch.setattr(g, "check_kv_cache", lambda plan, report: None)
    out = tmp_path / "r.md"
    import transformers
    threads, verbosity = torch.get_num_threads(), transformers.logging.get_verbosity()
    try: rc = g.main(["--dry-run-cpu", "--budget", "0", "--out", str(out)])
    finally:                                                  # main() sets both for its process: give this one its own back
        torch.set_num_threads(threads); transformers.logging.set_verbosity(verbosity)
    text = out.read_text()
    assert rc == 1
    assert "**FAILED: 2 of 2 checks**" in text
    assert "| kernel ss fp32 vs cpu fp32 | 0.5 | <= 0.001 | FAILED |" in text
    assert "| tiny model: raised RuntimeError | nan (CUDA error: out of memory) | - | FAILED |" in text
    assert "## Errors" in text and "Traceback" in text
