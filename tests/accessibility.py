"""axe-core in a page, for the browser tests; and what counts as real alt text.

axe-core is vendored under tests/vendor/axe-core/ (README.md there: version,
provenance, how to update). It is injected into a page the tests already
opened, never served by the site.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

from conftest import ROOT

AXE_DIR = ROOT / "tests" / "vendor" / "axe-core"
AXE_VERSION = "4.14.1"
IMPACTS = ("critical", "serious", "moderate", "minor")
FAILING = ("critical", "serious")
# WCAG 2.0 and 2.1, levels A and AA, and axe's best practices (landmarks,
# headings, region, ...): everything axe checks by default but the
# experimental rules and the AAA ones.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                      "best-practice"]},
               "resultTypes": ["violations"]}


def vendored_files() -> dict[str, str]:
    """{file name: sha256} as recorded in SHA256SUMS."""
    sums = {}
    for line in (AXE_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name] = digest
    return sums


def drifted() -> list[str]:
    """Vendored files whose sha256 is not the recorded one (empty when intact)."""
    return [name for name, digest in vendored_files().items()
            if hashlib.sha256((AXE_DIR / name).read_bytes()).hexdigest() != digest]


def axe_source() -> str:
    return (AXE_DIR / "axe.min.js").read_text()


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
