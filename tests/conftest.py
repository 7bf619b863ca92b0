"""Markers and shared fixtures of the test suite. `make test` runs the tests in two phases, so that both cores stay busy:
`pytest -m "not quick_outputs"` beside the quick reproduction, then `pytest -m quick_outputs`, the tests that read the
quick reproduction's outputs (`$STEERKIT_QUICK_OUT`). Run alone, a quick_outputs test makes the outputs it needs itself."""
import contextlib, io, os
from types import SimpleNamespace
import pytest

def pytest_configure(config):
    config.addinivalue_line("markers", "quick_outputs: reads the quick reproduction's outputs ($STEERKIT_QUICK_OUT); "
                            "make test runs these after the reproduction")


@pytest.fixture
def steerkit_main():
    """`run(*args, cwd=None)`: the command line `steerkit ARGS` run in this process through `steerkit.cli.main`, as a
    `CompletedProcess`-like (returncode, stdout, stderr). For commands that fail before a model loads: a subprocess
    would spend its seconds starting Python and importing torch; the console script itself is tested by the tests
    that run whole commands in a subprocess."""
    from steerkit.cli import main
    def run(*args, cwd=None):
        out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
        try:
            if cwd is not None: os.chdir(cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try: rc = main([str(a) for a in args])
                except SystemExit as e: rc = e.code          # argparse's own errors
        finally: os.chdir(here)
        return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())
    return run
