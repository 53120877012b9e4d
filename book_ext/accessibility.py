"""The book for readers who use a screen reader or a keyboard (WCAG 2.1 AA).

What axe-core (tests/test_browser.py runs it on every page, in both colour
modes) found in the themes' and extensions' markup, repaired where it is made:

* ``templates/``: the pydata theme's search field and colour switch, whose
  accessible names left out their visible text (label in name, 2.5.3), and its
  logo link, which sat outside every landmark region (1.3.1);
* the side navigation's expand/collapse buttons (``<summary>`` with only a
  chevron icon) get a name: "Sections of <chapter>" (4.1.2);
* in each page's body: myst-nb's "Show code cell source" toggles keep the name
  they show instead of "Toggle hidden content" (2.5.3); sphinxcontrib-bibtex's
  entries use the ``listitem`` role their ``list`` needs, not the deprecated
  ``doc-biblioentry`` (1.3.1);
* ``static/accessibility.css``: link colours with 4.5:1 contrast on the
  tinted backgrounds of admonitions, and figures readable in the dark mode.

Nothing here adds JavaScript to the pages.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent

# <li ...><a class="(current) reference internal" href="...">Title</a><details ...><summary>
_NAV_ENTRY = re.compile(r'(<a class="[^"]*reference internal[^"]*" href="[^"]*">(.*?)</a>'
                        r"<details[^>]*>)<summary>", re.S)
_TAG = re.compile(r"<[^>]+>")
_BODY_FIXES = (
    ('<summary aria-label="Toggle hidden content">', "<summary>"),
    ('role="doc-biblioentry"', 'role="listitem"'),
)


def _name_nav_toggles(toctree_html: str) -> str:
    def named(match: re.Match) -> str:
        title = html.unescape(_TAG.sub("", match.group(2))).strip()
        label = html.escape(f"Sections of {title}", quote=True)
        return f'{match.group(1)}<summary aria-label="{label}">'

    return _NAV_ENTRY.sub(named, toctree_html)


def _repair_page(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if body:
        for old, new in _BODY_FIXES:
            body = body.replace(old, new)
        context["body"] = body
    generate = context.get("generate_toctree_html")
    if generate is not None and not getattr(generate, "_names_toggles", False):
        def generate_named(*args, **kwargs):
            # The theme returns a BeautifulSoup tree (or str); the template prints str().
            return _name_nav_toggles(str(generate(*args, **kwargs)))

        generate_named._names_toggles = True
        context["generate_toctree_html"] = generate_named


def _add_paths(app, config):
    # First in the list: the templates here replace the themes' components.
    config.templates_path.insert(0, str(HERE / "templates"))
    config.html_static_path.append(str(HERE / "static"))


def setup(app):
    app.connect("config-inited", _add_paths)
    app.add_css_file("accessibility.css")
    # After the pydata theme puts generate_toctree_html into the context (priority 500).
    app.connect("html-page-context", _repair_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
