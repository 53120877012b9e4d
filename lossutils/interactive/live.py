"""The live rendering: ipywidgets controls redraw a matplotlib figure.

Every redraw calls each curve's ``fn`` again at the controls' current values,
so what the reader sees in Jupyter, Binder or Colab is lossutils computing
right now. The figure is a plain ``matplotlib.figure.Figure`` (not
pyplot's), so the inline backend never shows a stray copy at the end of the
cell, and it is sent as a PNG, which works with any matplotlib backend.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .declaration import FigureDeclaration, Slider


def draw(figure: FigureDeclaration, values: dict[str, Any], mpl_figure=None):
    """Draw every panel of ``figure`` at ``values`` into ``mpl_figure`` (a new matplotlib
    Figure when None); return it."""
    from matplotlib.figure import Figure

    n = len(figure.panels)
    if mpl_figure is None:
        mpl_figure = Figure(figsize=(3.4 * n, 3.3), layout="constrained")
    mpl_figure.clear()
    axes = mpl_figure.subplots(1, n, squeeze=False)[0]
    for index, (ax, panel) in enumerate(zip(axes, figure.panels, strict=True)):
        colors = dict(zip((c.label for c in panel.curves), panel.colors(), strict=True))
        for curve in panel.curves:
            ax.plot(panel.x, curve(panel.x, values), color=colors[curve.label], lw=2,
                    ls="--" if curve.dashed else "-", label=curve.label)
        for m in panel.markers:
            at = np.array([values[m.at]], dtype=np.float64)
            ax.plot(at, panel.curve(m.curve)(at, values), "o", color=colors[m.curve], ms=7)
        ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel,
               xlim=(panel.x[0], panel.x[-1]), ylim=figure.domain(index))
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return mpl_figure


def _control(c):
    import ipywidgets as W

    style, layout = {"description_width": "initial"}, W.Layout(width="460px")
    if isinstance(c, Slider):
        # continuous_update=False: redraw once the slider is let go, not for
        # every pixel of a drag (each redraw recomputes and renders a PNG).
        return W.FloatSlider(value=c.value, min=c.min, max=c.max, step=c.step, description=c.label,
                             continuous_update=False, style=style, layout=layout)
    return W.ToggleButtons(options=list(zip(c.texts, c.options, strict=True)), value=c.value,
                           description=c.label, style=style)


def widget(figure: FigureDeclaration):
    """A VBox: the controls, then the figure they redraw."""
    import ipywidgets as W
    from IPython.display import Image, display

    controls = {c.name: _control(c) for c in figure.controls}
    mpl_figure = None

    def redraw(**values):
        nonlocal mpl_figure
        mpl_figure = draw(figure, values, mpl_figure)
        png = io.BytesIO()
        mpl_figure.savefig(png, format="png", dpi=100)
        display(Image(data=png.getvalue(), format="png"))

    output = W.interactive_output(redraw, controls)
    return W.VBox([*controls.values(), output])
