"""Generation benchmark of issue 29: an SS sweep and unsteered answers on the refusing organism, timed.

The sweep: 16 HarmBench calibration prompts (seed 0) x 36 angles (0, 10, ..., 350) = 576 rows, 48 new tokens; then 128
unsteered HarmBench answers. No generation cache, 2 threads. Prints both times; with --out, pickles both DataFrames so
two versions' answers can be compared. Old against new: run it from a worktree of the old commit with
`PYTHONPATH=<worktree>`, alternating old and new runs on one machine (a timing is a ratio measured in one session).

    OMP_NUM_THREADS=2 .venv/bin/python tools/genbench.py --batch-size 128 --out /tmp/new.pkl
"""
import argparse, pickle, sys, time
import torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=None, help="pickle of (sweep rows, unsteered rows)")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    import steerkit
    from steerkit.models import load_model
    from steerkit.data_sets import load_prompts, split
    from steerkit.directions import calibrate_plane
    from steerkit.methods import method, plane_vectors
    from steerkit.generate import generate
    print(f"steerkit from {steerkit.__file__}", file=sys.stderr)
    m, tok = load_model("embedded-refusal")
    harm, _ = split(load_prompts("harmbench"), n_calib=16, n_test=2, seed=0)
    safe, _ = split(load_prompts("harmless"), n_calib=16, seed=0)
    ss = method(plane_vectors(calibrate_plane(m, tok, harm["prompt"], safe["prompt"], progress=False), "ss"), m)
    angles = [float(a_) for a_ in range(0, 360, 10)]
    P, V = [p for _ in angles for p in harm["prompt"]], [a_ for a_ in angles for _ in harm["prompt"]]
    t = time.time()
    df = generate(m, tok, P, ss.ivs, params=V, method=ss.key, phase=ss.phase, max_new_tokens=48,
                  batch_size=a.batch_size, progress=False)
    t_sweep, t = time.time() - t, time.time()
    du = generate(m, tok, list(load_prompts("harmbench")["prompt"][:128]), max_new_tokens=48, batch_size=a.batch_size,
                  progress=False)
    print(f"batch {a.batch_size}: sweep {len(df)} rows {t_sweep:.1f} s, unsteered {len(du)} rows {time.time() - t:.1f} s"
          f" (mean n_tokens {df.n_tokens.mean():.1f} / {du.n_tokens.mean():.1f})")
    if a.out: pickle.dump((df, du), open(a.out, "wb"))


if __name__ == "__main__":
    main()
