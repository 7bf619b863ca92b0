"""Markers and shared helpers of the test suite. `make test` runs the tests in two phases, so that both cores stay busy:
`pytest -m "not quick_outputs"` beside the quick reproduction, then `pytest -m quick_outputs`, the tests that read the
quick reproduction's outputs (`$STEERKIT_QUICK_OUT`). Run alone, a quick_outputs test makes the outputs it needs itself.

A command line is run one of two ways: `steerkit_cli` through the installed console script in a subprocess (what a user
runs: the tests of the console script itself, of a fresh process, of a module the user puts on PYTHONPATH, of a
server), and `steerkit_here` through `steerkit.cli.main` in the test's own process, for every other command: a
subprocess spends about 7 s starting Python and importing torch and transformers before the command does anything."""
import contextlib, io, os, subprocess, sys, traceback, warnings
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

EXE = Path(sys.executable).with_name("steerkit")


# The files whose tests run for tens of seconds each (end-to-end commands, servers, subprocesses; in `make test`
# test_readme_examples_run took 105 s, test_killed_sweep_resumes_with_only_the_missing_rows 100 s), first:
# pytest-xdist's two workers then end on short tests, together, not one of them alone on a long one. A file keeps its
# own order (its module-scoped fixtures, the embedded model or a server, are set up once).
HEAVY_FIRST = ("test_readme.py", "test_reliability.py", "test_serve.py", "test_cli_steer.py", "test_fit_contract.py",
               "test_equivalence.py", "test_gpu_check.py")


def pytest_collection_modifyitems(config, items):
    rank = {f: i for i, f in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda it: rank.get(it.path.name, len(rank)))      # stable: every other file in its usual order


def pytest_configure(config):
    config.addinivalue_line("markers", "quick_outputs: reads the quick reproduction's outputs ($STEERKIT_QUICK_OUT); "
                            "make test runs these after the reproduction")


def steerkit_cli(*args, env=None, cwd=None, timeout=600):
    "`steerkit ARGS` through the console script in a subprocess, with `env` added to the environment: a `CompletedProcess`."
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


def steerkit_here(*args, env=None, cwd=None):
    """`steerkit ARGS` in this process (`steerkit.cli.main`), as `steerkit_cli` would run it: `env` added to the
    environment, `sys.argv` and the working directory set, and all three restored afterwards (the command's own
    changes to the environment too); output, warnings and an uncaught exception's traceback (exit code 1, as the
    console script would end) captured into a `CompletedProcess`-like (returncode, stdout, stderr)."""
    from steerkit.cli import main
    args = [str(a) for a in args]
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    with mock.patch.dict(os.environ, {k: str(v) for k, v in (env or {}).items()}), \
         mock.patch.object(sys, "argv", ["steerkit", *args]), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if cwd is not None: os.chdir(cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try: rc = main(args)
                except SystemExit as e:                                   # argparse's own errors, sys.exit
                    rc = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
                    if isinstance(e.code, str): print(e.code, file=sys.stderr)
                except Exception: traceback.print_exc(); rc = 1
        finally: os.chdir(here)
    for w in caught: err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())
