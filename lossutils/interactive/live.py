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

from .core import InteractiveFigure, Slider


def draw(fig: InteractiveFigure, values: dict[str, Any], mpl=None):
    """Draw every panel at ``values`` into ``mpl`` (a new Figure when None); return it."""
    from matplotlib.figure import Figure

    n = len(fig.panels)
    if mpl is None:
        mpl = Figure(figsize=(3.4 * n, 3.3), layout="constrained")
    mpl.clear()
    axes = mpl.subplots(1, n, squeeze=False)[0]
    for index, (ax, panel) in enumerate(zip(axes, fig.panels)):
        colors = dict(zip((c.label for c in panel.curves), panel.colors()))
        for curve in panel.curves:
            ax.plot(panel.x, curve(panel.x, values), color=colors[curve.label], lw=2,
                    ls="--" if curve.dashed else "-", label=curve.label)
        for m in panel.markers:
            at = np.array([values[m.at]], dtype=np.float64)
            ax.plot(at, panel.curve(m.curve)(at, values), "o", color=colors[m.curve], ms=7)
        ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel,
               xlim=(panel.x[0], panel.x[-1]), ylim=fig.domain(index))
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return mpl


def _control(c):
    import ipywidgets as W

    style, layout = {"description_width": "initial"}, W.Layout(width="460px")
    if isinstance(c, Slider):
        # continuous_update=False: redraw once the slider is let go, not for
        # every pixel of a drag (each redraw recomputes and renders a PNG).
        return W.FloatSlider(value=c.value, min=c.min, max=c.max, step=c.step, description=c.label,
                             continuous_update=False, style=style, layout=layout)
    return W.ToggleButtons(options=list(zip(c.texts, c.options)), value=c.value, description=c.label,
                           style=style)


def widget(fig: InteractiveFigure):
    """A VBox: the controls, then the figure they redraw."""
    import ipywidgets as W
    from IPython.display import Image, display

    controls = {c.name: _control(c) for c in fig.controls}
    mpl = None

    def redraw(**values):
        nonlocal mpl
        mpl = draw(fig, values, mpl)
        png = io.BytesIO()
        mpl.savefig(png, format="png", dpi=100)
        display(Image(data=png.getvalue(), format="png"))

    output = W.interactive_output(redraw, controls)
    return W.VBox([*controls.values(), output])
