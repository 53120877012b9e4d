"""Interactive figures on the static site, with nothing from a third-party host.

Two jobs, both for ``lossutils.interactive``:

1. Before any chapter runs, set ``LOSSUTILS_FIGURES=static`` in this process's
   environment. The kernels that execute the chapters inherit it, so every
   interactive figure renders as a Vega-Lite chart whose controls work in the
   browser, and never as ipywidgets (whose saved state would give the site
   sliders with no kernel behind them).
2. Add the vendored vega, vega-lite and vega-embed (``vendor/vega``, served
   from ``_static/vega`` through ``html_static_path``) to the pages that hold
   such a figure, and only to those: they are about 0.83 MB.

Jupyter Book adds every ``*.js`` under the static paths to every page when the
book has a ``_static/`` folder; the vendored files are taken back out of
``html_js_files`` here so that can never load them (or MathJax's extensions)
everywhere.

And one repair, because the browser tests demand pages without errors:
sphinx-thebe 0.3.1 on Sphinx 7.4 puts its inline ``const THEBE_JS_URL = ...``
script on every page twice, a page error ("Identifier 'THEBE_JS_URL' has
already been declared"), even with thebe off. With thebe off its scripts are
dropped (they would only ever load thebe from unpkg.com); with it on, the
repeated inline script is written once.
"""

from __future__ import annotations

import os

# The same name as lossutils.interactive.MODE_ENV (tests/test_interactive.py
# checks): importing lossutils here would import torch into Sphinx.
MODE_ENV = "LOSSUTILS_FIGURES"
FIGURE_CLASS = "lossutils-figure"
VEGA_SCRIPTS = ("vega/vega.min.js", "vega/vega-lite.min.js", "vega/vega-embed.min.js")
VENDORED = ("vega/", "mathjax/")


def _keep_vendored_off_other_pages(app, config):
    config.html_js_files = [entry for entry in config.html_js_files
                            if not (entry[0] if isinstance(entry,
                                                           tuple) else entry).startswith(VENDORED)]


def _add_vega(app, pagename, templatename, context, doctree):
    if FIGURE_CLASS in context.get("body", ""):
        # In order, deferred: they run before DOMContentLoaded, which the
        # figure's own script waits for when the page is still loading.
        for path in VEGA_SCRIPTS:
            app.add_js_file(path, defer="defer")


def _drop_thebe_when_off(app, pagename, templatename, context, doctree):
    thebe_on = app.config.html_theme_options.get("launch_buttons", {}).get("thebe") is True
    kept, bodies = [], set()
    for js in context.get("script_files", []):
        body = js.attributes.get("body", "") if hasattr(js, "attributes") else ""
        is_thebe = "THEBE_JS_URL" in body or str(js.filename or "").endswith("sphinx-thebe.js")
        if not thebe_on and is_thebe:
            continue
        if body and not js.filename:
            if body in bodies:
                continue
            bodies.add(body)
        kept.append(js)
    # In place: this list is the builder's, restored before the next page.
    context["script_files"][:] = kept


def setup(app):
    os.environ[MODE_ENV] = "static"
    # After Sphinx turns html_js_files into (name, attributes) pairs (priority 800).
    app.connect("config-inited", _keep_vendored_off_other_pages, priority=900)
    app.connect("html-page-context", _add_vega)
    app.connect("html-page-context", _drop_thebe_when_off, priority=950)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
