"""Shared pytest setup: hypothesis profiles, the tests folder on sys.path, the built book."""

import fcntl
import json
import os
import pathlib
import subprocess
import sys
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))
# scripts/execute_book.py: the pages of the table of contents, and their parallel run
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts"))

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
_common = dict(deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.filter_too_much])
settings.register_profile("default", derandomize=True, database=None, **_common)
settings.register_profile("explore", derandomize=False, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# --- the built book, shared by every test that reads the site --------------
ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV_BIN = pathlib.Path(sys.executable).parent


@dataclass(frozen=True)
class BuiltBook:
    html: pathlib.Path  # the site's root folder (index.html)
    log: str  # everything jupyter-book printed
    returncode: int


def build_book(output: pathlib.Path) -> BuiltBook:
    """Build the executed site from scratch (a fresh jupyter-cache) into ``output``."""
    # The pages first, in parallel, into the build's jupyter-cache (as `make book` does).
    pre = subprocess.run([str(VENV_BIN / "python"), str(ROOT / "scripts" / "execute_book.py"),
                          "--output", str(output)], cwd=ROOT, capture_output=True, text=True,
                         timeout=1800)
    cmd = [str(VENV_BIN / "jupyter-book"), "build", "--all", str(ROOT), "--path-output",
           str(output), "-n", "-W", "--keep-going"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    log = pre.stdout + pre.stderr + proc.stdout + proc.stderr
    return BuiltBook(output / "_build" / "html", log, proc.returncode or pre.returncode)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> BuiltBook:
    """The book, built once per test run (set BOOK_HTML=_build/html to reuse a build).

    Under xdist every worker has its own session, so the first worker to ask
    builds the book in the run's shared temporary folder, under a file lock,
    and the others wait for it and reuse it. (xdist's --dist loadgroup cannot
    keep these tests on one worker with pytest 9: it renames items through
    ``item._nodeid``, which pytest 9 no longer reads.)
    """
    reuse = os.environ.get("BOOK_HTML")
    if reuse:
        return BuiltBook(pathlib.Path(reuse).resolve(), "", 0)
    run = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run = run.parent  # .../pytest-N, shared by this run's workers only
    output, result = run / "book", run / "book-result.json"
    with open(run / "book.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.exists():
            book = build_book(output)
            result.write_text(json.dumps({"log": book.log, "returncode": book.returncode}))
    saved = json.loads(result.read_text())
    return BuiltBook(output / "_build" / "html", saved["log"], saved["returncode"])
