"""Per capability: how many option sets ``tests/test_capabilities.py`` checks, and the
largest difference from torch it saw.

Runs that test file under pytest with a small plugin that wraps its two comparison
helpers (``_assert_trees_close`` for second derivatives, ``torch.func`` and compile;
``assert_within_twice_torch`` for autocast and half precision) and records, per check,
the largest difference from torch (absolute for float64 results; relative to the
largest magnitude of torch's result in float32 and half precision) and, for autocast
and half precision, the largest ratio of lossutils' error to
torch's error against the float64 result (the test allows 2x torch's + 2 ulp). The
assertions themselves are unchanged: a failing test still fails.

    .venv/bin/python scripts/capability_report.py            # every case
    .venv/bin/python scripts/capability_report.py -k softmax  # extra pytest arguments
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """A pytest plugin: wraps the comparison helpers of ``test_capabilities``."""

    def __init__(self, out: Path):
        self.out, self.rows, self.check = out, [], None

    def pytest_collection_finish(self, session):
        import torch

        module = sys.modules["test_capabilities"]
        trees, within = module._assert_trees_close, module.assert_within_twice_torch

        def diff(a, b):
            """Largest |a - b| over finite entries: absolute for float64 results, relative
            to torch's largest magnitude for float32 and the half dtypes."""
            low = a.dtype != torch.float64
            a, b = a.detach().double(), b.detach().double()
            both = a.isfinite() & b.isfinite()
            if not both.any():
                return 0.0
            scale = (float(b[both].abs().max()) or 1.0) if low else 1.0
            return float((a - b)[both].abs().max()) / scale

        def record_trees(ours, theirs, **tol):
            pairs = zip(module._flatten(ours), module._flatten(theirs), strict=False)
            self.note(max((diff(a, b) for a, b in pairs), default=0.0), None)
            return trees(ours, theirs, **tol)

        def record_within(ours, theirs, exact):
            o, t, r = ours.double(), theirs.double(), exact.double()
            both = r.isfinite() & o.isfinite() & t.isfinite()
            ratio = None
            if both.any():
                err_o, err_t = (o - r)[both].abs().max(), (t - r)[both].abs().max()
                ratio = float(err_o / err_t) if err_t > 0 else (0.0 if err_o == 0 else None)
            self.note(diff(ours, theirs), ratio)
            return within(ours, theirs, exact)

        module._assert_trees_close, module.assert_within_twice_torch = record_trees, record_within

    def note(self, difference, ratio):
        self.rows.append({"check": self.check, "diff": difference, "ratio": ratio})

    def pytest_runtest_setup(self, item):
        callspec = getattr(item, "callspec", None)
        self.check = callspec.params["check"] if callspec else item.name

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and "[" in report.nodeid:
            self.rows.append({"check": report.nodeid.split("[", 1)[1].split("-", 1)[0],
                              "outcome": report.outcome})

    def pytest_sessionfinish(self, session):
        self.out.write_text(json.dumps(self.rows))


def main(argv: list[str]) -> int:
    if os.environ.get("_CAPABILITY_REPORT_OUT"):  # the child: run pytest with the plugin
        import pytest

        return pytest.main(argv, plugins=[Recorder(Path(os.environ["_CAPABILITY_REPORT_OUT"]))])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        env = {**os.environ, "_CAPABILITY_REPORT_OUT": str(out)}
        cmd = [sys.executable, __file__, "-q", "-n", "0", "-p", "no:cacheprovider",
               "tests/test_capabilities.py", *argv]
        code = subprocess.call(cmd, cwd=ROOT, env=env)
        rows = json.loads(out.read_text()) if out.exists() else []
    tests, diffs, ratios = defaultdict(lambda: defaultdict(int)), defaultdict(float), {}
    for row in rows:
        if "outcome" in row:
            tests[row["check"]][row["outcome"]] += 1
            continue
        diffs[row["check"]] = max(diffs[row["check"]], row["diff"])
        if row["ratio"] is not None:
            ratios[row["check"]] = max(ratios.get(row["check"], 0.0), row["ratio"])
    print(f"\n{'check':20} {'option sets':>11} {'passed':>7} {'largest diff vs torch':>24}"
          f" {'error / torch error':>20}")
    for check in sorted(tests):
        ratio = f"{ratios[check]:.2f}" if check in ratios else "-"
        print(f"{check:20} {sum(tests[check].values()):11d} {tests[check]['passed']:7d}"
              f" {diffs[check]:24.3g} {ratio:>20}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
