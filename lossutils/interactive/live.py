"""The live rendering: ipywidgets controls redraw a matplotlib figure.

Every redraw calls each curve's ``fn`` again at the controls' current values,
so what the reader sees in Jupyter, Binder or Colab is lossutils computing
right now. The figure is a plain ``matplotlib.figure.Figure`` (not
pyplot's), so the inline backend never shows a stray copy at the end of the
cell, and it is sent as a PNG, which works with any matplotlib backend.

For readers who do not see it: each control carries its label, its range and
what it does (as a tooltip); the PNG goes out as an ``<img>`` whose alt text
names the figure and the control values it was drawn at; and the figure's
text description (``text_description``) follows it, in a collapsed block.
"""

from __future__ import annotations

import base64
import html
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
    # The label is the visible description (plain text: description_allow_html stays
    # off); the tooltip adds the range and what the control does.
    tooltip = c.accessible_name + (f": {c.help}" if c.help else "")
    if isinstance(c, Slider):
        # continuous_update=False: redraw once the slider is let go, not for
        # every pixel of a drag (each redraw recomputes and renders a PNG).
        return W.FloatSlider(value=c.value, min=c.min, max=c.max, step=c.step, description=c.label,
                             continuous_update=False, style=style, layout=layout, tooltip=tooltip)
    return W.ToggleButtons(options=list(zip(c.texts, c.options, strict=True)), value=c.value,
                           description=c.label, style=style, tooltip=tooltip,
                           tooltips=[f"{c.label}: {t}" for t in c.texts])


def image_html(png: bytes, alt: str) -> str:
    """The PNG as an <img> with alt text (a bare image/png output has none)."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}">'


def description_html(figure: FigureDeclaration) -> str:
    """The figure's text description, collapsed under a summary."""
    return ("<details><summary>Text description of this figure</summary>"
            f"{figure.text_description_html()}</details>")


def widget(figure: FigureDeclaration):
    """A VBox: the controls, the figure they redraw, the figure's text description."""
    import ipywidgets as W
    from IPython.display import HTML, display

    controls = {c.name: _control(c) for c in figure.controls}
    mpl_figure = None

    def redraw(**values):
        nonlocal mpl_figure
        mpl_figure = draw(figure, values, mpl_figure)
        png = io.BytesIO()
        mpl_figure.savefig(png, format="png", dpi=100, facecolor="white")
        display(HTML(image_html(png.getvalue(), figure.alt_text(values))))

    output = W.interactive_output(redraw, controls)
    return W.VBox([*controls.values(), output, W.HTML(description_html(figure))])
