"""axe-core in a page, for the browser tests; and what counts as real alt text.

axe-core comes from the npm registry, pinned (exact version and sha512) by
tests/axe/package-lock.json; ``make test`` installs it into
tests/axe/node_modules with ``npm ci`` (tests/axe/README.md). It is injected
into a page the tests already opened, never served by the site. Without it the
axe tests skip and say how to install it; under ``CI=true`` they fail instead,
so CI never passes without having run them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections import Counter

import pytest

from conftest import ROOT

AXE_DIR = ROOT / "tests" / "axe"
AXE_PACKAGE = AXE_DIR / "node_modules" / "axe-core"
NO_AXE = ("axe-core is not installed: the accessibility tests need it in tests/axe/node_modules; "
          "`make test` (or `make axe`) installs it with npm (`cd tests/axe && npm ci`; "
          "`apt-get install npm` first where npm is missing, as CI=true does)")
IMPACTS = ("critical", "serious", "moderate", "minor")
FAILING = ("critical", "serious")
# WCAG 2.0 and 2.1, levels A and AA, and axe's best practices (landmarks,
# headings, region, ...): everything axe checks by default but the
# experimental rules and the AAA ones.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                      "best-practice"]},
               "resultTypes": ["violations"]}


def pinned_version() -> str:
    """axe-core's version as package-lock.json pins it."""
    lock = json.loads((AXE_DIR / "package-lock.json").read_text())
    return lock["packages"]["node_modules/axe-core"]["version"]


def installed_version() -> str | None:
    """The version in tests/axe/node_modules, or None when axe-core is not there."""
    manifest = AXE_PACKAGE / "package.json"
    if not (manifest.is_file() and (AXE_PACKAGE / "axe.min.js").is_file()):
        return None
    return json.loads(manifest.read_text())["version"]


def published_sri(version: str) -> str:
    """The sha256 of axe.min.js that Deque published for ``version`` (the package's
    own sri-history.json), as "sha256-<base64>"."""
    return json.loads((AXE_PACKAGE / "sri-history.json").read_text())[version]["axe.min.js"]


def sri(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def axe_source_or_none() -> str | None:
    """axe.min.js when the pinned axe-core is installed, else None."""
    if installed_version() != pinned_version():
        return None
    return (AXE_PACKAGE / "axe.min.js").read_text()


def require_axe() -> str:
    """axe.min.js of the pinned release; a skip saying how to install it when it is
    missing, a failure under CI=true or when another version is installed."""
    installed, pinned = installed_version(), pinned_version()
    if installed is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, and {NO_AXE}")
        pytest.skip(NO_AXE)
    if installed != pinned:
        pytest.fail(f"tests/axe/node_modules holds axe-core {installed}, package-lock.json pins "
                    f"{pinned}: run `make axe` (npm ci in tests/axe)")
    return (AXE_PACKAGE / "axe.min.js").read_text()


def run_axe(page, source: str) -> list[dict]:
    """axe's violations on ``page`` as it is now: [{id, impact, help, nodes: [...]}]."""
    page.add_script_tag(content=source)
    result = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [{"target": n["target"], "summary": n.get("failureSummary", "")[:300]}
                       for n in v["nodes"]]}
            for v in result["violations"]]


def by_impact(violations: list[dict]) -> dict[str, int]:
    """How many elements fail, per impact (one violation can hold many elements)."""
    counts = Counter()
    for v in violations:
        counts[v["impact"]] += len(v["nodes"])
    return {impact: counts.get(impact, 0) for impact in IMPACTS}


# An alt text that is a file name, a path or a content hash says nothing about
# the picture (myst-nb's default alt is the image's path, named by its sha256).
_IMAGE_FILE = re.compile(r"\.(png|jpe?g|gif|svg|webp|pdf)$|_images/", re.IGNORECASE)
_PATH_OR_HASH = re.compile(r"^\S*[/\\]\S*$|^[0-9a-f]{16,}$", re.IGNORECASE)


def alt_problem(alt: str | None, min_words: int = 1) -> str | None:
    """Why ``alt`` is not real alt text (no alt, empty, a file name, a path, a hash,
    fewer than ``min_words`` words), or None when it is."""
    if alt is None:
        return "no alt attribute"
    text = alt.strip()
    if not text:
        return "empty alt"
    if _IMAGE_FILE.search(text) or _PATH_OR_HASH.match(text):
        return f"alt is a file name: {text!r}"
    if len(text.split()) < min_words:
        return f"alt {text!r} has fewer than {min_words} words"
    return None
