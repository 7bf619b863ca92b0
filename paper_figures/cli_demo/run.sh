#!/usr/bin/env bash
# The command-line demonstration: freeze SS on the organism's calibration split, then answer unseen prompts with it.
# Two frozen calibrations: `ss` chooses the angle on the calibration split (HarmBench-style requests) only; `ss_mix`
# also on calib_instructions.jsonl (16 "Tell me / Describe / Write a guide ..." requests, held-out kit rows the organism
# was never trained on). The plane and L_disc are the same in both; only the angle's choice differs.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=paper_figures/cli_demo; F=${FROZEN:-$D/frozen_ss}; F2=${FROZEN_MIX:-$D/frozen_ss_mix}
.venv/bin/steerkit calibrate --model embedded-refusal --method ss --out "$F"
.venv/bin/steerkit calibrate --model embedded-refusal --method ss --out "$F2" --calib-prompts $D/calib_instructions.jsonl
for kind in harmful harmless harmful_2 harmless_2 harmful_3 harmless_3; do
  for m in none ss ss_mix; do
    if [ $m = ss_mix ]; then meth=ss; cal=$F2; else meth=$m; cal=$F; fi
    .venv/bin/steerkit generate --model embedded-refusal --method $meth --prompts $D/$kind.txt --out $D/${kind}_$m.jsonl \
      --calibration "$cal" --max-new-tokens 64
  done
done
.venv/bin/python $D/summarize.py $D "$F" "$F2"
