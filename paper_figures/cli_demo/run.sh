#!/usr/bin/env bash
# The command-line demonstration: freeze SS on the organism's calibration split, then answer unseen prompts with it.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=paper_figures/cli_demo; F=${FROZEN:-$(mktemp -d)/frozen_ss}
.venv/bin/steerkit calibrate --model embedded-refusal --method ss --out "$F"
for kind in harmful harmless harmful_2 harmless_2; do
  for m in none ss; do
    .venv/bin/steerkit generate --model embedded-refusal --method $m --prompts $D/$kind.txt --out $D/${kind}_$m.jsonl \
      --calibration "$F" --max-new-tokens 64
  done
done
.venv/bin/python $D/summarize.py $D "$F"
