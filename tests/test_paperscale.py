"""The paper-scale switch offline: `steerkit reproduce --params paper` stops before any model work with a message that
names every download it needs (data, judge, tinyBenchmarks), and every paper notebook has a `paper` parameter set."""
import time
from pathlib import Path
import pytest
from steerkit.reproduce import load_manifest, check_parameters
from steerkit.data_sets import HubUnavailableError
from steerkit.paperscale import tiny_items, TINY_ITEMS, Judge, JudgeUnavailableError, preflight
from conftest import steerkit_here

ROOT = Path(__file__).parents[1]


def test_every_paper_notebook_has_a_paper_set():
    m = load_manifest()
    assert all("paper" in e["parameter_sets"] for e in m["notebooks"]), [e["name"] for e in m["notebooks"] if "paper" not in e["parameter_sets"]]
    check_parameters(m)                           # every parameter of every set, paper included, is in its notebook
    t1 = next(e for e in m["notebooks"] if e["name"] == "t1_main")["parameter_sets"]["paper"]
    assert (t1["harmful"], t1["harmless"], t1["test_harmful"], t1["judge"]) == ("advbench", "alpaca", "harmbench", "harmbench")


def test_paper_reproduction_offline_stops_before_any_work(tmp_path):
    t0 = time.time()
    r = steerkit_here("reproduce", "--params", "paper", "--only", "t1_main", "--out", tmp_path, env=dict(HF_HUB_OFFLINE="1"),
                      cwd=ROOT)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    for s in ("JudgeUnavailableError", "walledai/AdvBench", "tatsu-lab/alpaca", "huggingface-cli download cais/HarmBench-Llama-2-13b-cls",
              "tinyBenchmarks/tinyMMLU"):
        assert s in r.stderr, (s, r.stderr[-3000:])
    assert not (tmp_path/"t1_main.csv").exists()
    record = (tmp_path/"_runs"/"t1_main.ipynb").read_text()
    assert "load_model" in record and "Loading weights" not in record      # it stopped before the model was loaded
    assert time.time() - t0 < 300


@pytest.mark.parametrize("name", list(TINY_ITEMS))
def test_tiny_benchmarks_offline_name_their_repo(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match=f"tinyBenchmarks/{name}.*offline mode is set"):
        tiny_items(name)


@pytest.mark.parametrize("kind,repo", [("harmbench", "cais/HarmBench-Llama-2-13b-cls"), ("llamaguard", "meta-llama/Llama-Guard-3-8B")])
def test_judges_offline_say_what_to_download(kind, repo, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(JudgeUnavailableError, match=f"huggingface-cli download {repo}"):
        Judge.load(kind)
    with pytest.raises(JudgeUnavailableError, match="nothing was computed"):
        preflight(["harmbench"], judge=kind)


def test_preflight_refuses_an_unknown_judge():
    with pytest.raises(ValueError, match="Unknown judge 'gpt4'"):
        preflight([], judge="gpt4")
