"""Where an interactive figure is shown: ``figure_mode`` and ``InteractiveFigure``.

An ``InteractiveFigure`` is a :class:`~lossutils.interactive.declaration.FigureDeclaration`
that knows its two renderings:

* live (a kernel with a front-end: Jupyter, Binder, Colab): ipywidgets controls
  redraw a matplotlib figure, calling every ``fn`` again (:mod:`.live`);
* static (the built book): every ``fn`` is evaluated over the grid of control
  values it depends on, and a Vega-Lite chart filters that table in the
  browser, with no kernel (:mod:`.static`).

Both renderings import only the declaration, so nothing here is imported in a
cycle; and neither imports ipywidgets, matplotlib or IPython until a figure is
drawn, so ``import lossutils`` works without a display.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from . import live, static
from .declaration import FigureDeclaration

#: The environment variable that picks the rendering. The book's Sphinx
#: extension (book_ext/static_figures.py) sets it to "static" before any
#: chapter runs, so the built site never holds a widget without a kernel.
MODE_ENV = "LOSSUTILS_FIGURES"


def figure_mode() -> str:
    """``"live"`` (ipywidgets + matplotlib) or ``"static"`` (Vega-Lite HTML).

    ``LOSSUTILS_FIGURES`` decides when set; otherwise live exactly when an IPython
    kernel (a notebook front-end) runs the code and ipywidgets is installed.
    """
    forced = os.environ.get(MODE_ENV, "").strip().lower()
    if forced in ("live", "static"):
        return forced
    if forced:
        raise ValueError(f"{MODE_ENV}={forced!r}: expected 'live' or 'static'")
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return "static"
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return "static"
    return "live"


class InteractiveFigure(FigureDeclaration):
    """A figure with controls. Display it (last line of a cell) to get the rendering
    that fits where it runs (``figure_mode``); or ask for one explicitly:
    ``widget``, ``html``, ``vegalite``, ``draw``."""

    def draw(self, values: dict[str, Any] | None = None, mpl_figure=None):
        """A matplotlib Figure at the given control values (default: the initial ones),
        drawn into ``mpl_figure`` when given."""
        return live.draw(self, {**self.defaults, **(values or {})}, mpl_figure)

    def widget(self):
        """ipywidgets controls driving the matplotlib figure, recomputed live."""
        return live.widget(self)

    def vegalite(self) -> dict:
        """The Vega-Lite spec of the static rendering (data precomputed over the grid)."""
        return static.vegalite(self)

    def html(self) -> str:
        """The static rendering: a div and the script that embeds ``vegalite`` in it."""
        return static.html(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html(), "text/plain": repr(self)}

    def _ipython_display_(self):
        from IPython.display import display

        if figure_mode() == "live":
            display(self.widget())
        else:
            display(self._repr_mimebundle_(), raw=True)

    def __repr__(self) -> str:
        controls = ", ".join(c.name for c in self.controls)
        return f"<interactive figure {self.name!r}: {len(self.panels)} panels, controls {controls}>"
