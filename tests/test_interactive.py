"""lossutils.interactive without a browser: both renderings show what torch
computes, the static data is what the live figure draws, the spec is valid
Vega-Lite, the live controls redraw, and the vendored JavaScript is intact."""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT
from lossutils import interactive as LI
from lossutils.interactive import Curve, InteractiveFigure, Marker, Panel, Slider, figures


@pytest.fixture(scope="module")
def specs():
    """Each named figure and its static spec (computed once: the training one trains 22
    networks)."""
    made = [LI.ce_temperature(), LI.regression_losses(), LI.kl_gaussian_fit(), LI.training_lr()]
    return {figure.name: (figure, figure.vegalite()) for figure in made}


def stored_curve(figure, spec, panel, label, **values):
    """Decode one stored curve of the static chart back to floats (as the browser does)."""
    p = figure.panels[panel]
    k = [c.label for c in p.curves].index(label)
    rows = [r for r in spec["datasets"][f"{figure.name}-{panel}"]
            if r["k"] == k and all(math.isclose(r[n], v) if isinstance(v, float) else r[n] == v
                                   for n, v in values.items())]
    assert len(rows) == 1, rows
    unit = float(re.search(r"datum\.y \* ([0-9.e-]+)", json.dumps(spec["hconcat"][panel])).group(1))
    return np.array([np.nan if v is None else v * unit for v in rows[0]["y"]]), unit


def test_import_needs_no_display_or_widgets():
    code = ("import sys, lossutils, lossutils.interactive as LI; LI.ce_temperature(); "
            "print(sorted({'ipywidgets', 'matplotlib', 'IPython', 'altair'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def _relative_imports(path) -> set[str]:
    """The sibling modules ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
    return found


def test_the_package_has_no_import_cycle():
    """The declaration is a leaf; the renderings import it; core imports the renderings."""
    folder = ROOT / "lossutils" / "interactive"
    graph = {p.stem: _relative_imports(p) for p in folder.glob("*.py")}
    assert graph["declaration"] == set()
    assert graph["live"] == graph["static"] == {"declaration"}

    def reachable(module: str) -> set[str]:
        seen, todo = set(), list(graph[module])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(graph.get(name, ()))
        return seen

    assert not [m for m in graph if m in reachable(m)], graph


def test_mode_follows_the_environment(monkeypatch):
    monkeypatch.setenv(LI.MODE_ENV, "static")
    assert LI.figure_mode() == "static"
    monkeypatch.setenv(LI.MODE_ENV, "live")
    assert LI.figure_mode() == "live"
    monkeypatch.setenv(LI.MODE_ENV, "widgets")
    with pytest.raises(ValueError, match="LOSSUTILS_FIGURES"):
        LI.figure_mode()
    monkeypatch.delenv(LI.MODE_ENV)
    assert LI.figure_mode() == "static"  # plain Python: no kernel, no front-end


def test_the_book_extension_sets_the_same_variable():
    spec = importlib.util.spec_from_file_location("static_figures",
                                                  ROOT / "book_ext" / "static_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.MODE_ENV == LI.MODE_ENV
    assert module.FIGURE_CLASS in LI.ce_temperature().html()


def test_static_cross_entropy_is_torchs(specs):
    figure, spec = specs["ce-temperature"]
    x = torch.tensor(figure.panels[0].x)
    logits = torch.stack([x, torch.zeros_like(x), torch.zeros_like(x)], dim=1) / 2.0
    target = torch.zeros(len(x), dtype=torch.long)
    for panel, want in ((0, F.cross_entropy(logits, target, reduction="none")),
                        (1, F.softmax(logits, dim=1)[:, 0]),
                        (2, (F.softmax(logits, dim=1)[:, 0] - 1) / 2.0)):
        got, unit = stored_curve(figure, spec, panel, "at temperature T", T=2.0)
        lo, hi = figure.domain(panel)
        shown = (want.numpy() >= lo) & (want.numpy() <= hi)
        assert np.abs(got - want.numpy())[shown].max() <= unit / 2 + 1e-12


def test_static_regression_losses_are_torchs(specs):
    figure, spec = specs["regression-losses"]
    r = torch.tensor(figure.panels[0].x, requires_grad=True)
    zero = torch.zeros_like(r)
    for label, kw, loss in (("Huber (δ)", {"delta": 0.7},
                             F.huber_loss(r, zero, delta=0.7, reduction="none")),
                            ("SmoothL1 (β)", {"beta": 2.0},
                             F.smooth_l1_loss(r, zero, beta=2.0, reduction="none")),
                            ("L1", {}, F.l1_loss(r, zero, reduction="none"))):
        (grad,) = torch.autograd.grad(loss.sum(), r)
        for panel, want in ((0, loss.detach()), (1, grad)):
            got, unit = stored_curve(figure, spec, panel, label, **kw)
            lo, hi = figure.domain(panel)
            shown = (want.numpy() >= lo) & (want.numpy() <= hi)
            assert np.abs(got - want.numpy())[shown].max() <= unit / 2 + 1e-12, label


def test_static_kl_is_torchs(specs):
    figure, spec = specs["kl-gaussian-fit"]
    grid = torch.linspace(-7, 7, 1401, dtype=torch.float64)
    dx = grid[1] - grid[0]

    def pdf(x, mu, s):
        return torch.exp(-0.5 * ((x - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    p = 0.5 * pdf(grid, -2.0, 0.6) + 0.5 * pdf(grid, 2.0, 0.6)
    mus = torch.tensor(figure.panels[1].x)
    q = pdf(grid[None], mus[:, None], 1.5)
    forward = F.kl_div((q * dx).clamp_min(1e-300).log(), (p * dx).expand_as(q),
                       reduction="none").sum(1)
    reverse = F.kl_div((p * dx).clamp_min(1e-300).log().expand_as(q), q * dx,
                       reduction="none").sum(1)
    for label, want in (("forward KL(p‖q)", forward), ("reverse KL(q‖p)", reverse)):
        got, unit = stored_curve(figure, spec, 1, label, sigma=1.5)
        shown = want.numpy() <= figure.domain(1)[1]
        assert shown.sum() > 10 and np.abs(got - want.numpy())[shown].max() <= unit / 2 + 1e-12


def test_static_training_curves_learn_and_diverge_where_they_should(specs):
    figure, spec = specs["training-lr"]
    slow, _ = stored_curve(figure, spec, 0, "this learning rate", log_lr=-4.0, reduction="mean")
    good, _ = stored_curve(figure, spec, 0, "this learning rate", log_lr=0.0, reduction="mean")
    summed, _ = stored_curve(figure, spec, 0, "this learning rate", log_lr=-2.5, reduction="sum")
    assert abs(slow[0] - math.log(10)) < 0.1 and slow[-1] > 2.0  # ten classes, lr 1e-4 barely moves
    assert good[-1] < 0.3 and summed[-1] < 0.3
    # 'sum' multiplies the gradient by the batch (512): lr 10^-2.5 with 'sum' ~ lr 1.6 with 'mean'
    final, _ = stored_curve(figure, spec, 1, "after 100 steps", reduction="mean")
    best = np.argmin(final)
    assert final[best] < 0.3 and best == figure.panels[1].x.tolist().index(0.0)


def test_static_and_live_draw_the_same_numbers(specs):
    import matplotlib

    matplotlib.use("Agg")
    figure, spec = specs["regression-losses"]
    mpl_figure = figure.draw({"delta": 0.3, "beta": 2.5})
    lines = {line.get_label(): line.get_ydata() for line in mpl_figure.axes[1].lines}
    got, unit = stored_curve(figure, spec, 1, "Huber (δ)", delta=0.3)
    assert np.abs(got - lines["Huber (δ)"]).max() <= unit / 2 + 1e-12
    got, unit = stored_curve(figure, spec, 1, "SmoothL1 (β)", beta=2.5)
    assert np.abs(got - lines["SmoothL1 (β)"]).max() <= unit / 2 + 1e-12


@pytest.mark.parametrize("name",
                         ["ce-temperature", "regression-losses", "kl-gaussian-fit", "training-lr"])
def test_spec_is_valid_vega_lite_and_small(specs, name):
    alt = pytest.importorskip("altair")
    figure, spec = specs[name]
    alt.HConcatChart.from_dict(spec, validate=True)
    # Every slider position exists in the data the filters look for.
    for c in figure.controls:
        if isinstance(c, Slider):
            assert len(c.grid) == round((c.max - c.min) / c.step) + 1
    assert len(json.dumps(spec, separators=(",", ":"))) < 150_000  # + vega's ~830 kB < 1 MB a page


def test_html_embeds_the_spec_safely():
    figure = LI.regression_losses()
    page = figure.html()
    assert "</script" not in re.search(r'type="application/json"[^>]*>(.*?)</script>', page,
                                       re.S).group(1)
    embedded = json.loads(re.search(r'type="application/json"[^>]*>(.*?)</script>', page,
                                    re.S).group(1))
    assert embedded == json.loads(json.dumps(figure.vegalite()))


@pytest.fixture
def draws(monkeypatch):
    """Every redraw of a live figure, as the control values it was drawn with."""
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from lossutils.interactive import live

    calls = []
    real_draw = live.draw
    monkeypatch.setattr(live, "draw",
                        lambda figure, values, mpl_figure=None: calls.append(dict(values))
                        or real_draw(figure, values, mpl_figure))
    return calls, real_draw


def test_live_widget_recomputes_on_every_move(draws):
    calls, real_draw = draws
    box = LI.ce_temperature().widget()
    temperature, logit = box.children[0], box.children[1]
    assert calls[-1] == {"T": 1.0, "z": 2.0}
    temperature.value = 2.5
    assert calls[-1] == {"T": 2.5, "z": 2.0}
    logit.value = -3.0
    assert calls[-1] == {"T": 2.5, "z": -3.0}
    mpl_figure = real_draw(LI.ce_temperature(), calls[-1])
    ce = F.cross_entropy(torch.tensor([[-3.0, 0.0, 0.0]]) / 2.5, torch.tensor([0])).item()
    marker = mpl_figure.axes[0].lines[-1]
    assert marker.get_xdata()[0] == -3.0 and math.isclose(marker.get_ydata()[0], ce, rel_tol=1e-6)


def test_live_choice_redraws(specs, draws):
    calls, _ = draws
    box = specs["training-lr"][0].widget()  # its runs are cached by the static spec above
    box.children[1].value = "sum"
    assert calls[-1] == {"log_lr": 0.0, "reduction": "sum"}


def test_a_kernel_gets_widgets_and_the_book_gets_html():
    """In a real kernel: live unless LOSSUTILS_FIGURES=static (what the book's extension sets)."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "import os\nos.environ.pop('LOSSUTILS_FIGURES', None)\n"
        "from lossutils.interactive import regression_losses\nregression_losses()",
        "os.environ['LOSSUTILS_FIGURES'] = 'static'\nregression_losses()")]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    live_out, static_out = ([o for o in c.outputs if o.output_type == "display_data"]
                            for c in nb.cells)
    assert len(live_out) == 1 and "application/vnd.jupyter.widget-view+json" in live_out[0].data
    assert len(static_out) == 1 and set(static_out[0].data) == {"text/html", "text/plain"}
    assert 'class="lossutils-figure"' in static_out[0].data["text/html"]


def _tiny(**curve_kw):
    a = Slider("a", "a", 0.0, 1.0, 0.5, 0.5)
    return InteractiveFigure("tiny", [a],
                             [Panel("p", np.linspace(0, 1, 3), [Curve("c", **curve_kw)])])


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="unknown controls"):
        _tiny(fn=lambda x, b: x * b)
    with pytest.raises(ValueError, match="differs from its fn"):
        _tiny(fn=lambda x, a: x * a, expr="x + a").vegalite()
    _tiny(fn=lambda x, a: x * a, expr="x * a").vegalite()
    with pytest.raises(ValueError, match="must be an identifier"):
        InteractiveFigure("r", [Slider("k", "k", 0.0, 1.0, 0.5, 0.5)], [])
    with pytest.raises(ValueError, match="not min"):
        Slider("s", "s", 0.0, 1.0, 0.3, 0.5)
    a = Slider("a", "a", 0.0, 1.0, 0.25, 0.5)
    with pytest.raises(ValueError, match="x grid"):
        InteractiveFigure("m", [a], [Panel("p", np.linspace(0, 1, 3), [Curve("c", lambda x: x)],
                                           markers=[Marker("c", "a")])])


def test_training_runs_leave_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    figures._run.__wrapped__(-1.0, "mean")  # past the cache: really train
    assert torch.equal(torch.rand(3), expected)


def test_vendored_files_match_their_manifest():
    spec = importlib.util.spec_from_file_location("vendor_js", ROOT / "scripts" / "vendor_js.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.check() == []


# -- for readers who do not see the figure, or use no mouse ------------------

def _contrast_on_white(colour: str) -> float:
    """WCAG 2.1 contrast ratio of ``colour`` (#rrggbb) against white."""
    def channel(c):
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def test_every_colour_of_a_figure_has_3_to_1_contrast_on_white(specs):
    """WCAG 2.1 1.4.11: the lines of a chart are graphics a reader needs."""
    colours = set(LI.declaration.PALETTE)
    for figure, _ in specs.values():
        for panel in figure.panels:
            colours |= set(panel.colors())
    weak = {c: round(_contrast_on_white(c), 2) for c in colours if _contrast_on_white(c) < 3}
    assert not weak, weak


def test_the_chapters_matplotlib_figures_use_the_same_palette():
    from matplotlib import rc_params_from_file

    rc = rc_params_from_file(ROOT / "chapters" / "matplotlibrc", use_default_template=False)
    assert tuple(rc["axes.prop_cycle"].by_key()["color"]) == LI.declaration.PALETTE
    assert rc["figure.facecolor"] == rc["savefig.facecolor"] == "white"


def test_text_description_says_what_the_figure_shows(specs):
    for figure, _ in specs.values():
        text = figure.text_description()
        assert figure.description and len(figure.explanation.split()) >= 30, figure.name
        for i, panel in enumerate(figure.panels):
            assert f"Panel {i + 1} of {len(figure.panels)}, “{panel.title}”" in text
            assert all(f"“{c.label}”" in text for c in panel.curves), (figure.name, panel.title)
        for c in figure.controls:
            assert c.help, (figure.name, c.name)
            assert f"Control: {c.label}: {c.range_text}" in text
    ce = specs["ce-temperature"][0]
    assert ce.control("T").accessible_name == "temperature T, from 0.2 to 3 in steps of 0.1"
    assert specs["training-lr"][0].control("reduction").range_text == "one of mean or sum"
    assert ce.alt_text({"T": 2.5, "z": -3.0}).endswith(
        "at temperature T = 2.5, true-class logit x_y = -3.")


def test_static_html_names_and_describes_the_figure():
    figure = LI.kl_gaussian_fit()
    page = figure.html()
    root = re.search(r'<div class="lossutils-figure" id="([^"]+)"[^>]*>', page)
    fid = root.group(1)
    assert 'role="figure"' in root.group(0) and f'aria-describedby="{fid}-text"' in root.group(0)
    described = re.search(rf'<div id="{fid}-text">(.*?)</div>', page, re.S).group(1)
    assert described == figure.text_description_html()
    controls = json.loads(re.search(r"var controls = (\[.*?\]);", page).group(1))
    assert [c["name"] for c in controls] == [c.accessible_name for c in figure.controls]


def test_live_widget_describes_its_controls_and_image(draws):
    from lossutils.interactive import live

    figure = LI.training_lr()
    box = figure.widget()
    slider, choice = box.children[0], box.children[1]
    assert slider.description == "log₁₀ learning rate" and "from -4 to 1" in slider.tooltip
    assert choice.description == "reduction" and list(choice.tooltips) == ["reduction: mean",
                                                                           "reduction: sum"]
    assert "Text description of this figure" in box.children[-1].value
    assert figure.text_description_html() in box.children[-1].value
    img = live.image_html(b"\x89PNG", figure.alt_text(figure.defaults))
    assert re.fullmatch(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="Training loss '
                        r'curves [^"]+, at log₁₀ learning rate = 0, reduction = mean\.">', img)
