"""What an interactive figure is, as data: controls, panels of curves, markers.

A figure is declared once: its controls (``Slider``, ``Choice``) and its
panels, each a list of ``Curve`` objects whose ``fn(x, **controls)`` computes
``y`` (with ``lossutils``). The controls a curve depends on are its ``fn``'s
parameters after ``x`` without a default. Both renderings (``live`` and
``static``) read this declaration and nothing else; this module imports
neither of them, nor ipywidgets, matplotlib or IPython.

A figure also says in words what it shows (``description``, ``explanation``,
each control's ``help``): ``text_description`` puts that together with what
the declaration already knows (panels, axes, curves, ranges), so a reader who
cannot see the chart -- or cannot use a mouse -- gets the same figure.
"""

from __future__ import annotations

import html
import inspect
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: matplotlib's "tab10" hues, with its orange, pink, olive and cyan darkened so
#: every line has at least 3:1 contrast against the white plot (WCAG 2.1
#: 1.4.11); both renderings use them, and so do the chapters' matplotlib
#: figures (chapters/matplotlibrc).
PALETTE = ("#1f77b4", "#e66100", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#c8559f", "#7f7f7f", "#8f9014", "#1493a0")

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Field names of the static chart's rows (see static.py), so no control may take them.
_RESERVED = frozenset({"x", "y", "k", "i", "v", "curve"})


def _number(v) -> str:
    return f"{v:g}" if isinstance(v, float | int) else str(v)


@dataclass(frozen=True)
class Slider:
    """A number from ``min`` to ``max`` in steps of ``step``, starting at ``value``;
    ``help`` says in words what moving it does, ``unit`` what it counts (if anything)."""

    name: str
    label: str
    min: float
    max: float
    step: float
    value: float
    help: str = ""
    unit: str = ""

    def __post_init__(self):
        if not (self.step > 0 and self.min < self.max):
            raise ValueError(f"Slider {self.name!r}: need step > 0 and min < max, got "
                             f"min={self.min}, max={self.max}, step={self.step}")
        for what, v in (("max", self.max), ("value", self.value)):
            k = (v - self.min) / self.step
            if abs(k - round(k)) > 1e-6 or not self.min <= v <= self.max:
                raise ValueError(f"Slider {self.name!r}: {what}={v} is not min + k*step "
                                 f"within [{self.min}, {self.max}] (step {self.step})")

    @property
    def grid(self) -> list[float]:
        """Every value the slider can take (rounded, so 0.1 + 0.2 prints as 0.3)."""
        n = round((self.max - self.min) / self.step)
        return [round(self.min + k * self.step, 10) for k in range(n + 1)]

    @property
    def range_text(self) -> str:
        """``"from 0.2 to 3 in steps of 0.1"`` (with the unit, if any)."""
        unit = f" {self.unit}" if self.unit else ""
        return (f"from {_number(self.min)}{unit} to {_number(self.max)}{unit} "
                f"in steps of {_number(self.step)}")

    @property
    def accessible_name(self) -> str:
        """What a screen reader announces for the control: its visible label first."""
        return f"{self.label}, {self.range_text}"


@dataclass(frozen=True)
class Choice:
    """One of ``options`` (numbers or strings), shown as ``labels`` (default: the options)."""

    name: str
    label: str
    options: tuple
    value: Any
    labels: tuple | None = None
    help: str = ""

    def __post_init__(self):
        if self.value not in self.options:
            raise ValueError(f"Choice {self.name!r}: value {self.value!r} is not one of "
                             f"{self.options!r}")
        if self.labels is not None and len(self.labels) != len(self.options):
            raise ValueError(f"Choice {self.name!r}: {len(self.labels)} labels for "
                             f"{len(self.options)} options")

    @property
    def grid(self) -> list:
        return list(self.options)

    @property
    def texts(self) -> list[str]:
        return [str(t) for t in (self.labels or self.options)]

    @property
    def range_text(self) -> str:
        """``"one of mean or sum"``."""
        texts = self.texts
        return "one of " + (", ".join(texts[:-1]) + " or " + texts[-1] if len(texts) > 1
                            else texts[0])

    @property
    def accessible_name(self) -> str:
        return f"{self.label}, {self.range_text}"


Control = Slider | Choice


@dataclass(frozen=True)
class Curve:
    """One line: ``y = fn(x, **controls)``, for the controls named by ``fn``'s parameters.

    ``expr`` optionally gives the same curve as a Vega expression in ``x`` and the
    control names (``exp``, ``log``, ``sqrt``, ``pow``, ``abs``, ``PI``), drawn by the
    browser instead of stored point by point; it is checked against ``fn`` over the
    whole control grid before the page is written.
    """

    label: str
    fn: Callable[..., Any]
    color: str | None = None
    dashed: bool = False
    expr: str | None = None

    @property
    def depends(self) -> tuple[str, ...]:
        """The controls ``fn`` reads: its parameters after ``x`` without a default
        (a default binds a constant, e.g. ``lambda x, T, fn=fn: fn(x, T)``)."""
        params = list(inspect.signature(self.fn).parameters.values())[1:]
        return tuple(p.name for p in params if p.default is inspect.Parameter.empty)

    def __call__(self, x: np.ndarray, values: dict[str, Any]) -> np.ndarray:
        y = self.fn(x, **{name: values[name] for name in self.depends})
        if hasattr(y, "detach"):  # a torch tensor
            y = y.detach().cpu().numpy()
        return np.broadcast_to(np.asarray(y, dtype=np.float64), np.shape(x))


@dataclass(frozen=True)
class Marker:
    """A dot on curve ``curve`` (its label) at x = the current value of slider ``at``."""

    curve: str
    at: str


@dataclass(frozen=True)
class Panel:
    """One plot: curves over the evenly spaced ``x``; ``ylim`` fixes the y-range (else
    the range of every curve over the whole control grid, so it never jumps)."""

    title: str
    x: Sequence[float]
    curves: Sequence[Curve]
    xlabel: str = ""
    ylabel: str = ""
    ylim: tuple[float, float] | None = None
    markers: Sequence[Marker] = ()

    def __post_init__(self):
        x = np.asarray(self.x, dtype=np.float64)
        object.__setattr__(self, "x", x)
        steps = np.diff(x)
        evenly_increasing = (x.ndim == 1 and len(x) >= 2 and steps[0] > 0
                             and np.allclose(steps, steps[0], rtol=1e-9, atol=1e-12))
        if not evenly_increasing:
            raise ValueError(f"Panel {self.title!r}: x must be increasing and evenly spaced")
        labels = [c.label for c in self.curves]
        if len(set(labels)) != len(labels):
            raise ValueError(f"Panel {self.title!r}: curve labels repeat: {labels}")

    @property
    def dx(self) -> float:
        return float(self.x[1] - self.x[0])

    def colors(self) -> list[str]:
        return [c.color or PALETTE[i % len(PALETTE)] for i, c in enumerate(self.curves)]

    def curve(self, label: str) -> Curve:
        return next(c for c in self.curves if c.label == label)


@dataclass(eq=False)
class FigureDeclaration:
    """A figure with controls, as data: its ``controls`` and its ``panels`` of curves,
    checked for consistency when it is made. The renderings read nothing else.

    ``description`` names the figure in one line (its accessible name);
    ``explanation`` says what it shows and what to look for, for a reader who
    cannot see it (``text_description`` adds the panels and controls)."""

    name: str
    controls: Sequence[Control]
    panels: Sequence[Panel]
    description: str = ""
    explanation: str = ""
    _domains: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        names = [c.name for c in self.controls]
        for n in names:
            if not _NAME.match(n) or n in _RESERVED:
                raise ValueError(f"{self.name}: control name {n!r} must be an identifier, "
                                 f"not one of {sorted(_RESERVED)}")
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: control names repeat: {names}")
        for panel in self.panels:
            for curve in panel.curves:
                unknown = set(curve.depends) - set(names)
                if unknown:
                    raise ValueError(f"{self.name}: curve {curve.label!r} asks for unknown "
                                     f"controls {sorted(unknown)}; the controls are {names}")
            for m in panel.markers:
                self._check_marker(panel, m)

    def _check_marker(self, panel: Panel, marker: Marker) -> None:
        labels = [c.label for c in panel.curves]
        if marker.curve not in labels or panel.curve(marker.curve).expr is not None:
            raise ValueError(f"{self.name}: marker on {marker.curve!r}, not a curve of "
                             f"{panel.title!r} {labels} computed point by point (without expr)")
        control = self.control(marker.at)
        # The static chart finds the marker among the curve's stored points, so
        # every value of the slider must be one of the panel's x values.
        ok = isinstance(control, Slider) and all(
            np.min(np.abs(panel.x - v)) < 1e-6 * max(1.0, abs(v)) for v in control.grid)
        if not ok:
            raise ValueError(f"{self.name}: marker at {marker.at!r} needs a slider whose values "
                             f"all lie on the x grid of panel {panel.title!r}")

    def panel_texts(self) -> list[str]:
        """One sentence per panel: its curves, its axes and their ranges, its dots."""
        texts = []
        for index, panel in enumerate(self.panels):
            lo, hi = self.domain(index)
            curves = ", ".join(f"“{c.label}”" + (" (dashed)" if c.dashed else "")
                               for c in panel.curves)
            text = (f"“{panel.title}”: {curves} against {panel.xlabel or 'x'} from "
                    f"{_number(float(panel.x[0]))} to {_number(float(panel.x[-1]))}; "
                    f"{panel.ylabel or 'y'} from {lo:.3g} to {hi:.3g}.")
            for m in panel.markers:
                text += f" A dot marks “{m.curve}” at the current {self.control(m.at).label}."
            texts.append(text)
        return texts

    def control_texts(self) -> list[str]:
        """One sentence per control: its label, its range and what it does."""
        return [f"{c.label}: {c.range_text}, starting at {_number(c.value)}"
                + (f"; {c.help}" if c.help else "") + "." for c in self.controls]

    def text_description(self) -> str:
        """The whole figure in words, as plain text (both renderings show it)."""
        parts = [self.description + "." if self.description else "", self.explanation]
        parts += [f"Panel {i + 1} of {len(self.panels)}, {t}"
                  for i, t in enumerate(self.panel_texts())]
        parts += ["Control: " + t for t in self.control_texts()]
        return "\n".join(p for p in parts if p)

    def text_description_html(self) -> str:
        """``text_description`` as HTML paragraphs (what both renderings show)."""
        lines = self.text_description().splitlines()
        return "".join(f"<p>{html.escape(line)}</p>" for line in lines)

    def alt_text(self, values: dict[str, Any]) -> str:
        """A short alt text for the figure drawn at ``values`` (the live rendering's image)."""
        at = ", ".join(f"{c.label} = {_number(values[c.name])}" for c in self.controls)
        return f"{self.description or self.name}, at {at}."

    def control(self, name: str) -> Control:
        for c in self.controls:
            if c.name == name:
                return c
        names = [c.name for c in self.controls]
        raise KeyError(f"{self.name}: no control {name!r}; the controls are {names}")

    @property
    def defaults(self) -> dict[str, Any]:
        return {c.name: c.value for c in self.controls}

    def combos(self, names: Sequence[str]):
        """Every combination of the named controls' values, as dicts."""
        grids = [self.control(n).grid for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grids)]

    def domain(self, index: int) -> tuple[float, float]:
        """The y-range of panel ``index``: its ylim, or the range of every curve over the grid."""
        panel = self.panels[index]
        if panel.ylim is not None:
            return tuple(map(float, panel.ylim))
        if index not in self._domains:
            ys = [curve(panel.x, values)
                  for curve in panel.curves for values in self.combos(curve.depends)]
            finite = np.concatenate([y[np.isfinite(y)] for y in ys])
            lo, hi = float(finite.min()), float(finite.max())
            pad = 0.05 * (hi - lo or 1.0)
            self._domains[index] = (lo - pad, hi + pad)
        return self._domains[index]
