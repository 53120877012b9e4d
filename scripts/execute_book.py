"""Execute the book's pages in parallel into the jupyter-cache the build reads.

    python scripts/execute_book.py                      # for `jupyter-book build .`
    python scripts/execute_book.py --output /tmp/site   # for `... --path-output /tmp/site`

Why: every page runs in a kernel of its own, and a kernel's start-up (Python,
torch, matplotlib) costs about 4.5 s however little the page computes. Sphinx
executes the pages one after another (``sphinx_multitoc_numbering`` keeps its
reading serial, so ``-j`` does not help); here they run on every core at
once, and the build that follows finds each page's outputs in the cache
(``execute_notebooks: cache`` in ``_config.yml``) and runs nothing again.

A page whose execution fails is only reported here: it stays out of the cache,
so the build runs it once more and fails on it with the traceback in its log,
exactly as it would without this step.

The kernels run as the build's do: in the page's own folder (``run_in_temp:
false``), with ``LOSSUTILS_FIGURES=static`` (what ``book_ext/static_figures.py``
sets before any page runs), so the cached outputs are the ones the build
would make.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import sys
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def toc_files(root: pathlib.Path = ROOT) -> list[str]:
    """Every page of the table of contents, sections included, in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())

    def walk(entries):
        for entry in entries:
            yield entry["file"]
            yield from walk(entry.get("sections", []))

    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += walk(part.get("chapters", []))
    files += walk(toc.get("chapters", []))
    return files


def notebook_pages(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    """The pages that are notebooks: MyST markdown with a jupytext kernelspec header."""
    pages = [root / f"{name}.md" for name in toc_files(root)]
    return [p for p in pages if p.exists() and "kernelspec:" in p.read_text().split("\n---", 1)[0]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=ROOT,
                        help="the build's --path-output (default: the book root)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per page")
    args = parser.parse_args(argv)

    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    os.environ["LOSSUTILS_FIGURES"] = "static"
    cache = get_cache(args.output / "_build" / ".jupyter_cache")
    pages = notebook_pages()
    for page in pages:
        cache.add_nb_to_project(str(page), read_data={"name": "myst_nb_md", "type": "plugin"})
    logger = logging.getLogger("execute_book")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    start = time.perf_counter()
    result = load_executor("local-parallel", cache=cache, logger=logger).run_and_cache(
        filter_uris=[str(p) for p in pages], timeout=args.timeout)
    print(f"execute_book: {len(result.succeeded)} page(s) executed, "
          f"{len(pages) - len(result.succeeded) - len(result.excepted) - len(result.errored)} "
          f"already cached, {len(result.excepted) + len(result.errored)} failed "
          f"(left for the build to run and report) in {time.perf_counter() - start:.1f} s")
    for uri in result.excepted + result.errored:
        print(f"  failed: {pathlib.Path(uri).relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
