"""T8's refusal rows on the shipped (second) organism: the code of t8_methods' refusal cell, alone (the whole t8_methods
takes ~95 min; this cell took 987 s of it). Same parameters as t8_methods' full run (StudyConfig defaults, angle step 30).
Usage: .venv/bin/python paper_figures/t8_refusal_organism2/run.py"""
import time
from pathlib import Path
import torch
torch.set_num_threads(2)
from steerkit.models import load_model, model_fingerprint
from steerkit.study import StudyConfig, jailbreak_study

out = Path(__file__).parent
t0 = time.time()
mo, to = load_model("embedded-refusal")
cfg = StudyConfig(angle_step=30)
jb = jailbreak_study(mo, to, cfg, progress=False, methods=("ss", "caa", "austeer", "sadi"))
R = jb["table"][["method", "setting", "compliance", "coherent_compliance", "compliance_everyday", "over_refusal", "ref_ppl", "mc_accuracy", "kl"]]
R.to_csv(out/"t8_refusal.csv", index=False)
note = (f"T8's refusal rows on embedded-refusal (fingerprint {model_fingerprint(mo)}): jailbreak_study with SS, CAA, AUSteer, SADI; "
        f"{cfg.n_calib} calibration prompts per class, angle step {cfg.angle_step}, {cfg.max_new_tokens} new tokens, chosen by coherent "
        f"compliance; held-out {cfg.n_test} HarmBench, {cfg.n_everyday} everyday-style, {cfg.n_test} harmless. L_disc {list(jb['L_disc']['ss'])}; "
        f"CAA/AUSteer/SADI layer {jb['layer']}. Wall time {time.time() - t0:.0f} s.\n\n")
(out/"t8_refusal.md").write_text(note + R.to_markdown(index=False, floatfmt=".3f") + "\n")
print((out/"t8_refusal.md").read_text())
