"""The static rendering: a Vega-Lite chart whose controls work in the browser.

Every curve is evaluated in Python over the grid of the control values it
depends on; each evaluation is one row ``{"k": curve index, <control>: value,
..., "y": [integers]}``. The browser keeps the rows whose control values match
the sliders, unrolls ``y`` (``flatten``), rebuilds ``x`` from the point's index
(the panel's x is evenly spaced) and scales ``y`` back. So the page holds
lossutils' own numbers, and nothing is recomputed without a kernel except
curves that carry a closed-form ``expr``.

``y`` is stored as integers in units of a thousandth of the panel's y-range
(three significant digits of the plot, far below a pixel), clipped to one
range beyond the axis on either side: that keeps the data small enough that a
page with a figure weighs under 1 MB more than one without (the vendored
Vega libraries are most of it).
"""

from __future__ import annotations

import html as _html
import itertools
import json
import math
import re
from contextlib import contextmanager

import numpy as np
import torch

from .declaration import FigureDeclaration, Panel, Slider

WIDTH = 660  # px for all panels together: the book theme's text column

_FUNCTIONS = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "pow": np.power, "abs": np.abs,
              "PI": math.pi}
_counter = itertools.count()


def _param(c) -> str:
    return f"c_{c}"


def _params(figure: FigureDeclaration) -> list[dict]:
    params = []
    for c in figure.controls:
        if isinstance(c, Slider):
            bind = {"input": "range", "min": c.min, "max": c.max, "step": c.step,
                    "name": c.label + " "}
        else:
            bind = {"input": "radio", "options": list(c.options), "labels": c.texts,
                    "name": c.label + " "}
        params.append({"name": _param(c.name), "value": c.value, "bind": bind})
    return params


def _matches(figure: FigureDeclaration, names: set[str]) -> str:
    """A row is kept when each control it was computed for equals the control's value.
    Rows without that field (curves that do not depend on it) always pass."""
    terms = []
    for c in figure.controls:
        if c.name not in names:
            continue
        if isinstance(c, Slider):  # half a step of slack: slider values are decimal strings
            test = f"abs(datum.{c.name} - {_param(c.name)}) < {c.step / 2!r}"
        else:
            test = f"datum.{c.name} == {_param(c.name)}"
        terms.append(f"(!isValid(datum.{c.name}) || {test})")
    return " && ".join(terms)


def _quantize(y: np.ndarray, lo: float, hi: float, unit: float) -> list:
    span = hi - lo
    y = np.clip(y, lo - span, hi + span)  # +-inf too: the line leaves the axis the right way
    q = np.round(y / unit)
    return [None if math.isnan(v) else int(v) for v in q.tolist()]


def _to_vega(expr: str, figure: FigureDeclaration) -> str:
    """``expr`` with ``x`` as the data point's field and each control as its parameter."""
    names = {c.name for c in figure.controls}

    def vega_name(match: re.Match) -> str:
        word = match.group(0)
        if word == "x":
            return "datum.x"
        return _param(word) if word in names else word

    return re.sub(r"\b[A-Za-z_]\w*\b", vega_name, expr)


def _check_expr(figure: FigureDeclaration, panel: Panel, curve) -> None:
    """The browser's closed form must draw what ``fn`` computes: checked at up to
    ~100 control combinations spread over the grid (the first and last included)."""
    combos = figure.combos(curve.depends)
    for values in combos[::max(1, len(combos) // 100)] + combos[-1:]:
        scope = {"__builtins__": {}, **_FUNCTIONS, **values, "x": panel.x}
        # eval: the expression is the figure author's own string, evaluated without builtins
        got = np.asarray(eval(curve.expr, scope), dtype=np.float64)
        want = curve(panel.x, values)
        if not np.allclose(got, want, rtol=1e-6, atol=1e-9, equal_nan=True):
            raise ValueError(f"{figure.name}: expr of {curve.label!r} differs from its fn at "
                             f"{values}: max |diff| {np.nanmax(np.abs(got - want)):.3g}")


def _panel(figure: FigureDeclaration, index: int, datasets: dict, width: int) -> dict:
    panel = figure.panels[index]
    lo, hi = figure.domain(index)
    unit = 10.0 ** math.floor(math.log10((hi - lo) / 1000))
    x0, dx, n = float(panel.x[0]), panel.dx, len(panel.x)
    labels = [c.label for c in panel.curves]

    rows, depends = [], set()
    for k, curve in enumerate(panel.curves):
        if curve.expr is not None:
            _check_expr(figure, panel, curve)
            continue
        depends.update(curve.depends)
        for values in figure.combos(curve.depends):
            rows.append({"k": k, **values, "y": _quantize(curve(panel.x, values), lo, hi, unit)})

    encoding = {
        "x": {"field": "x", "type": "quantitative", "title": panel.xlabel,
              "scale": {"domain": [x0, float(panel.x[-1])], "nice": False}},
        "y": {"field": "v", "type": "quantitative", "title": panel.ylabel,
              "scale": {"domain": [lo, hi], "nice": False, "zero": False}},
        "color": {"field": "curve", "type": "nominal", "title": None,
                  "scale": {"domain": labels, "range": panel.colors()},
                  "legend": {"orient": "bottom", "direction": "vertical", "labelLimit": width,
                             "symbolType": "stroke"}},
    }
    line = {"type": "line", "clip": True, "strokeWidth": 2}
    dash = {"field": "curve", "type": "nominal", "legend": None,
            "scale": {"domain": labels,
                      "range": [[5, 3] if c.dashed else [1, 0] for c in panel.curves]}}
    layers = []
    if rows:
        name = f"{figure.name}-{index}"
        datasets[name] = rows
        unroll = [{"filter": _matches(figure, depends)}] if depends else []
        unroll += [
            {"flatten": ["y"]},
            {"window": [{"op": "row_number", "as": "i"}], "groupby": ["k"]},
            {"calculate": f"{x0!r} + (datum.i - 1) * {dx!r}", "as": "x"},
            {"calculate": f"isValid(datum.y) ? datum.y * {unit!r} : null", "as": "v"},
            {"calculate": f"{json.dumps(labels)}[datum.k]", "as": "curve"},
        ]
        layers.append({"data": {"name": name}, "transform": unroll, "mark": line,
                       "encoding": {**encoding, "strokeDash": dash}})
        for m in panel.markers:
            k = labels.index(m.curve)
            at = f"datum.k == {k} && abs(datum.x - {_param(m.at)}) < {dx / 2!r}"
            layers.append({"data": {"name": name}, "transform": unroll + [{"filter": at}],
                           "mark": {"type": "point", "filled": True, "size": 70, "opacity": 1},
                           "encoding": encoding})
    for curve in panel.curves:
        if curve.expr is None:
            continue
        layers.append({
            "data": {"sequence": {"start": 0, "stop": n, "as": "i"}},
            "transform": [{"calculate": f"{x0!r} + datum.i * {dx!r}", "as": "x"},
                          {"calculate": _to_vega(curve.expr, figure), "as": "v"},
                          {"calculate": json.dumps(curve.label), "as": "curve"}],
            "mark": line, "encoding": {**encoding, "strokeDash": dash}})
    return {"title": panel.title, "width": width, "height": 200, "layer": layers}


@contextmanager
def _one_thread():
    """Many small tensor ops: one torch thread is faster, and the book builds on a
    shared machine where idle-spinning threads slow everyone down."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def vegalite(figure: FigureDeclaration) -> dict:
    """The Vega-Lite (v6) spec: one view per panel side by side, sliders below."""
    datasets: dict = {}
    n = len(figure.panels)
    width = int((WIDTH - 70 * n) / n)
    with _one_thread():
        views = [_panel(figure, i, datasets, width) for i in range(n)]
    return {
        "params": _params(figure),
        "datasets": datasets,
        "hconcat": views,
        "resolve": {"scale": {"color": "independent", "strokeDash": "independent"}},
        "config": {"view": {"stroke": "#bbb"}, "axis": {"grid": True, "gridOpacity": 0.4},
                   "title": {"fontSize": 12, "fontWeight": "normal"}},
    }


# The figure as a reader gets it, seen or not: a named figure (role, label) whose
# accessible description is the text description in the <details> below the
# chart; the chart an image with that name (its marks are no separate stops for
# a screen reader); each slider labelled with its name and range, each group of
# radio buttons a named radiogroup. Range inputs and radio buttons are native,
# so Tab reaches them and the arrow keys move them. White behind the figure in
# both colour modes: its colours are chosen against white.
_TEMPLATE = """\
<div class="lossutils-figure" id="{id}" data-figure="{name}" role="figure"
     aria-label="{label}" aria-describedby="{id}-text">
<div class="lossutils-figure-chart" id="{id}-chart"></div>
<details class="lossutils-figure-description"><summary>Text description of this figure</summary>
<div id="{id}-text">{text}</div></details>
</div>
<style>#{id} {{background: #fff; color: #222832; padding: 0.4em; border-radius: 0.25rem}}
#{id} .vega-bind-name {{display: inline-block; min-width: 12em}}
#{id} .vega-bind-radio label {{margin: 0 1.2em 0 0.3em}}
#{id} details {{margin-top: 0.4em}} #{id} summary {{color: #085d6c; cursor: pointer}}
#{id} details p {{margin: 0.3em 0}}</style>
<script type="application/json" id="{id}-spec">{spec}</script>
<script>
(function () {{
  var controls = {controls};
  function label(root) {{
    var svg = root.querySelector("svg.marks");
    if (svg) {{
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", {chart_label});
      svg.setAttribute("aria-describedby", "{id}-text");
    }}
    root.querySelectorAll(".vega-bind").forEach(function (bind, i) {{
      var c = controls[i];
      if (!c) return;
      var range = bind.querySelector("input[type=range]");
      if (range) range.setAttribute("aria-label", c.name);
      var radios = bind.querySelector(".vega-bind-radio");
      if (radios) {{
        radios.setAttribute("role", "radiogroup");
        radios.setAttribute("aria-label", c.name);
      }}
    }});
  }}
  function draw() {{
    var chart = document.getElementById("{id}-chart");
    if (typeof vegaEmbed === "undefined") {{
      // A saved output opened outside the book (Colab, Jupyter): no vega here.
      chart.textContent = "Interactive figure: run this cell to get its controls.";
      return;
    }}
    var spec = JSON.parse(document.getElementById("{id}-spec").textContent);
    vegaEmbed(chart, spec, {{actions: false, renderer: "svg", mode: "vega-lite"}})
      .then(function () {{ label(chart); }})
      .catch(function (error) {{ console.error("lossutils figure {name}:", error); }});
  }}
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
}})();
</script>
"""


def _script_json(value) -> str:
    """JSON to put inside a <script>: no "</script>" can end the block early."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def html(figure: FigureDeclaration) -> str:
    """The figure as HTML. The page must load vega, vega-lite and vega-embed
    (book_ext/static_figures.py adds the vendored copies to pages with a figure,
    recognised by the ``lossutils-figure`` class)."""
    spec = json.dumps(vegalite(figure), separators=(",", ":"), allow_nan=False)
    spec = spec.replace("<", "\\u003c")  # no "</script>" can end the block early
    label = _html.escape(figure.description or figure.name, quote=True)
    controls = [{"name": c.accessible_name} for c in figure.controls]
    return _TEMPLATE.format(
        id=f"lossutils-{figure.name}-{next(_counter)}", name=figure.name, spec=spec, label=label,
        text=figure.text_description_html(), controls=_script_json(controls),
        chart_label=_script_json(f"Chart: {figure.description or figure.name}"))
