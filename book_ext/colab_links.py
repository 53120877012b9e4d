"""Point each chapter's Colab button at its executed notebook.

Colab opens only ``.ipynb`` files from GitHub, and the chapters are MyST
markdown. The deploy workflow publishes each executed chapter as
``chapters/<name>.ipynb`` on the ``notebooks`` branch; this extension rewrites
the theme's Colab link (which would point at the ``.md`` on the main branch)
to that stable path. Binder keeps launching the ``.md`` from the main branch:
its environment (``binder/``) opens MyST markdown as a notebook via jupytext.
"""

from __future__ import annotations

NOTEBOOKS_BRANCH = "notebooks"


def _rewrite(app, pagename, templatename, context, doctree):
    url = app.config.html_theme_options.get("repository_url", "")
    if not url.startswith("https://github.com/"):
        return
    org_repo = url.removeprefix("https://github.com/").strip("/")
    colab = app.config.html_theme_options.get("launch_buttons", {}).get("colab_url", "").rstrip("/")
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            if button.get("text") == "Colab":
                notebook = f"{org_repo}/blob/{NOTEBOOKS_BRANCH}/{pagename}.ipynb"
                button["url"] = f"{colab}/github/{notebook}"


def setup(app):
    # After sphinx-book-theme has added its launch buttons (priority 501).
    app.connect("html-page-context", _rewrite, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
