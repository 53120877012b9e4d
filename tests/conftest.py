"""Shared pytest setup: hypothesis profiles and the tests folder on sys.path."""

import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

# Kernels started by this test process (the book build's and the chapters')
# get an IPython directory of their own: kernels of the two xdist workers
# sharing ~/.ipython's history database can lock it ("database is locked"
# tracebacks in the build log).
if "IPYTHONDIR" not in os.environ or os.environ.get("LOSSUTILS_TEST_IPYTHONDIR"):
    import atexit
    import shutil
    import tempfile

    os.environ["IPYTHONDIR"] = tempfile.mkdtemp(prefix="lossutils-ipython-")
    os.environ["LOSSUTILS_TEST_IPYTHONDIR"] = "1"
    atexit.register(shutil.rmtree, os.environ["IPYTHONDIR"], ignore_errors=True)

# CI and `make test` are deterministic (derandomize: the same examples every
# run, so a red CI is reproducible); HYPOTHESIS_PROFILE=explore searches anew.
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.filter_too_much])
settings.register_profile("default", derandomize=True, database=None, **_common)
settings.register_profile("explore", derandomize=False, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# --- the built book, shared by every test that reads the site --------------
import pathlib  # noqa: E402
import subprocess  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV_BIN = pathlib.Path(sys.executable).parent


@dataclass(frozen=True)
class BuiltBook:
    html: pathlib.Path  # the site's root folder (index.html)
    log: str  # everything jupyter-book printed
    returncode: int


def build_book(output: pathlib.Path) -> BuiltBook:
    """Build the executed site from scratch (a fresh jupyter-cache) into ``output``."""
    cmd = [str(VENV_BIN / "jupyter-book"), "build", "--all", str(ROOT), "--path-output", str(output),
           "-n", "-W", "--keep-going"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    return BuiltBook(output / "_build" / "html", proc.stdout + proc.stderr, proc.returncode)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BuiltBook:
    """The book built once per test session (set BOOK_HTML=_build/html to reuse a build)."""
    reuse = os.environ.get("BOOK_HTML")
    if reuse:
        return BuiltBook(pathlib.Path(reuse).resolve(), "", 0)
    return build_book(tmp_path_factory.mktemp("book"))


def pytest_collection_modifyitems(config, items):
    # Every test that reads the built site runs in one xdist worker, so the
    # book is built once per run, not once per worker.
    for item in items:
        if "built_book" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("book"))
