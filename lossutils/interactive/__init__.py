"""Interactive figures: one call in a chapter, two renderings.

>>> from lossutils.interactive import ce_temperature
>>> ce_temperature()            # the last line of a notebook cell
<interactive figure 'ce-temperature': 3 panels, controls T, z>

Plain Python shows its ``repr``. Displayed in a live kernel (Jupyter, Binder,
Colab), it is ipywidgets controls that redraw a matplotlib figure, recomputed
by lossutils on every move. In the built book (``LOSSUTILS_FIGURES=static``,
set by book_ext/static_figures.py) it is a Vega-Lite chart whose controls
filter values lossutils computed in advance over every slider position, so it
responds in the browser with no kernel.

A new figure is declared as data: ``Slider`` / ``Choice`` controls and
``Panel`` objects holding ``Curve`` objects, where
``Curve(label, fn)`` draws ``fn(x, **controls)``, and the controls a curve uses
are ``fn``'s parameters after ``x`` that have no default (``declaration``);
see ``figures`` for four examples.

Neither ipywidgets, matplotlib nor IPython is imported until a figure is drawn.
"""

from .core import MODE_ENV, InteractiveFigure, figure_mode
from .declaration import Choice, Curve, Marker, Panel, Slider
from .figures import ce_temperature, kl_gaussian_fit, regression_losses, training_lr

__all__ = ["MODE_ENV", "Choice", "Curve", "InteractiveFigure", "Marker", "Panel", "Slider",
           "figure_mode", "ce_temperature", "kl_gaussian_fit", "regression_losses", "training_lr"]
