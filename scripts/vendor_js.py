"""Refresh vendor/ from the npm registry: the JavaScript the book serves itself.

The published site loads nothing from a third-party host, so the libraries its
pages need are copied into the repository at pinned versions:

* vega, vega-lite, vega-embed -- draw the interactive figures on the static site
  (lossutils.interactive emits the Vega-Lite specs; vega-lite is pinned to the
  schema version Altair targets);
* MathJax 3 (the ``tex-chtml`` component, its TeX extensions and its woff fonts)
  -- typesets the math (``mathjax_path`` in _config.yml points at it).

Usage (needs ``npm`` and network)::

    python scripts/vendor_js.py           # download the pinned tarballs, rewrite vendor/
    python scripts/vendor_js.py --check   # offline: do vendor/'s files match vendor/VERSIONS?

``npm pack`` checks each tarball against the registry's integrity hash; the
hash and a sha256 of every copied file are written to vendor/VERSIONS so a
later ``--check`` (and tests/test_interactive.py) can tell if a file drifted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "vendor"

# name -> (version, destination folder under vendor/, {path in the package: path under destination})
# Folders are copied whole; a trailing "/" marks them.
PINS: dict[str, tuple[str, str, dict[str, str]]] = {
    "vega": ("6.4.0", "vega", {"build/vega.min.js": "vega.min.js", "LICENSE": "LICENSE-vega"}),
    "vega-lite": ("6.4.1", "vega", {"build/vega-lite.min.js": "vega-lite.min.js",
                                    "LICENSE": "LICENSE-vega-lite"}),
    "vega-embed": ("7.3.0", "vega", {"build/vega-embed.min.js": "vega-embed.min.js",
                                     "LICENSE": "LICENSE-vega-embed"}),
    # MathJax finds its extensions and fonts relative to its own URL, so the
    # es5/ layout is kept: tex-chtml.js beside input/ and output/.
    "mathjax": ("3.2.2", "mathjax", {
        "es5/tex-chtml.js": "tex-chtml.js",
        "es5/input/tex/extensions/": "input/tex/extensions/",
        "es5/output/chtml/fonts/woff-v2/": "output/chtml/fonts/woff-v2/",
        "LICENSE": "LICENSE",
    }),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _strip_source_map(path: Path) -> None:
    """Drop ``//# sourceMappingURL=`` lines: the .map files are not vendored, and a
    browser with devtools open would otherwise request them (a failed request)."""
    if path.suffix != ".js":
        return
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.split("\n") if not line.startswith("//# sourceMappingURL=")]
    path.write_text("\n".join(lines), encoding="utf-8")


def _copy(src: Path, dst: Path) -> list[Path]:
    if src.is_dir():
        copied = []
        for f in sorted(src.rglob("*")):
            if f.is_file():
                copied += _copy(f, dst / f.relative_to(src))
        return copied
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    _strip_source_map(dst)
    return [dst]


def refresh() -> None:
    for _, folder, _ in PINS.values():
        shutil.rmtree(VENDOR / folder, ignore_errors=True)
    manifest = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, (version, folder, files) in PINS.items():
            out = subprocess.run(["npm", "pack", f"{name}@{version}", "--json",
                                  "--pack-destination", str(tmp)],
                                 check=True, capture_output=True, text=True).stdout
            info = json.loads(out)[0]
            unpacked = tmp / name
            with tarfile.open(tmp / info["filename"]) as tar:
                # "data" refuses links and paths outside the folder (Python >= 3.11.4).
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(unpacked, **safe)
            copied = []
            for src, dst in files.items():
                copied += _copy(unpacked / "package" / src, VENDOR / folder / dst)
            manifest[name] = {
                "version": version,
                "tarball": f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{version}.tgz",
                "integrity": info["integrity"],
                "files": {p.relative_to(VENDOR).as_posix(): _sha256(p) for p in copied},
            }
            print(f"{name}@{version}: {len(copied)} files")
    (VENDOR / "VERSIONS").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def check() -> list[str]:
    """Problems with vendor/ against vendor/VERSIONS (empty when all is well)."""
    manifest = json.loads((VENDOR / "VERSIONS").read_text())
    problems = []
    for name, (version, _, _) in PINS.items():
        entry = manifest.get(name)
        if entry is None or entry["version"] != version:
            problems.append(f"{name}: VERSIONS has {entry and entry['version']}, "
                            f"the pin is {version}")
            continue
        for rel, digest in entry["files"].items():
            path = VENDOR / rel
            if not path.is_file():
                problems.append(f"{rel}: missing")
            elif _sha256(path) != digest:
                problems.append(f"{rel}: sha256 differs from VERSIONS")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="verify vendor/ against vendor/VERSIONS, offline")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) or "vendor/ matches vendor/VERSIONS")
        return 1 if problems else 0
    refresh()
    return 0


if __name__ == "__main__":
    sys.exit(main())
