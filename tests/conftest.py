"""Markers of the test suite. `make test` runs the tests in two phases, so that both cores stay busy:
`pytest -m "not quick_outputs"` beside the quick reproduction, then `pytest -m quick_outputs`, the tests that read the
quick reproduction's outputs (`$STEERKIT_QUICK_OUT`). Run alone, a quick_outputs test makes the outputs it needs itself."""

def pytest_configure(config):
    config.addinivalue_line("markers", "quick_outputs: reads the quick reproduction's outputs ($STEERKIT_QUICK_OUT); "
                            "make test runs these after the reproduction")
