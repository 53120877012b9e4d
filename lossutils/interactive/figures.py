"""The book's four interactive figures. Each function returns an
``InteractiveFigure``; display it (the last line
of a cell) and it renders live or static, wherever it runs. Every number on
them comes from ``lossutils.functional`` (and its hand-written backwards).
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np
import torch

from lossutils.functional import (
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    smooth_l1_loss,
    softmax,
)

from .core import InteractiveFigure
from .declaration import Choice, Curve, Marker, Panel, Slider

_F64 = torch.float64


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=_F64)


def _grad(loss_of, x) -> torch.Tensor:
    """d loss / d input, elementwise, through lossutils' own backward."""
    r = _t(x).requires_grad_()
    (g,) = torch.autograd.grad(loss_of(r), r)
    return g


# -- chapter 03: cross-entropy and temperature ------------------------------

def _scaled_logits(x, T) -> torch.Tensor:
    """Three classes, the true one (class 0) at logit x, the others at 0; divided by T."""
    logits = torch.zeros(len(x), 3, dtype=_F64)
    logits[:, 0] = _t(x)
    return logits / T


def _ce(x, T=1.0):
    true_class = torch.zeros(len(x), dtype=torch.long)
    return cross_entropy(_scaled_logits(x, T), true_class, reduction="none")


def _q_true(x, T=1.0):
    return softmax(_scaled_logits(x, T), dim=1)[:, 0]


def _ce_grad(x, T=1.0):
    """d CE / d x_y with respect to the raw logit, before the division by T: (q_y - 1) / T."""
    raw = torch.zeros(len(x), 3, dtype=_F64)
    raw[:, 0] = _t(x)
    raw.requires_grad_()
    loss = cross_entropy(raw / T, torch.zeros(len(x), dtype=torch.long), reduction="sum")
    (g,) = torch.autograd.grad(loss, raw)
    return g[:, 0]


def ce_temperature() -> InteractiveFigure:
    """Cross-entropy of one sample against its true class's logit, at temperature T.

    Defined in :doc:`/chapters/03_2_why_cross_entropy`.
    """
    x = np.linspace(-6, 6, 121)
    panels = []
    for title, fn, ylabel, ylim in (
        ("cross-entropy −log q_y", _ce, "loss (nats)", (0, 6)),
        ("probability of the true class", _q_true, "q_y = softmax(x / T)_y", (-0.02, 1.02)),
        ("gradient on the true logit", _ce_grad, "∂loss / ∂x_y", (-5.2, 0.2)),
    ):
        at_T = Curve("at temperature T", lambda x, T, fn=fn: fn(x, T))
        at_1 = Curve("T = 1", lambda x, fn=fn: fn(x), color="#888888", dashed=True)
        panels.append(Panel(title, x, [at_T, at_1],
                            xlabel="true-class logit x_y (others 0)", ylabel=ylabel, ylim=ylim,
                            markers=[Marker("at temperature T", "z")]))
    return InteractiveFigure(
        "ce-temperature",
        [Slider("T", "temperature T", 0.2, 3.0, 0.1, 1.0,
                help="every logit is divided by T before the softmax"),
         Slider("z", "true-class logit x_y", -6.0, 6.0, 0.1, 2.0,
                help="moves the dot along each solid curve")],
        panels, description="Cross-entropy, the true class's probability and the gradient against "
                            "the true logit, for a temperature T",
        explanation="Three classes; the true class's logit x_y runs along the horizontal axis, "
                    "the other two logits stay at 0. Each panel draws one quantity at temperature "
                    "T (solid) and at T = 1 (dashed grey). The loss falls and the probability "
                    "rises as x_y grows; the gradient tends to −1/T for a badly wrong prediction "
                    "and to 0 for a confident right one. T above 1 flattens the softmax: the "
                    "curves stretch out and the gradient shrinks; T below 1 sharpens them.")


# -- chapter 04: regression losses ------------------------------------------

def _zeros_like(r):
    return torch.zeros_like(r)


def _regression(name):
    """(loss, gradient) functions of the residual for one lossutils regression loss."""
    f = {"L1": l1_loss, "MSE": mse_loss, "Huber": huber_loss, "SmoothL1": smooth_l1_loss}[name]
    extra = {"Huber": "delta", "SmoothL1": "beta"}.get(name)
    if extra is None:
        def loss(x):
            r = _t(x)
            return f(r, _zeros_like(r), reduction="none")

        def grad(x):
            return _grad(lambda r: f(r, _zeros_like(r), reduction="sum"), x)
    elif extra == "delta":
        def loss(x, delta):
            r = _t(x)
            return f(r, _zeros_like(r), reduction="none", delta=delta)

        def grad(x, delta):
            return _grad(lambda r: f(r, _zeros_like(r), reduction="sum", delta=delta), x)
    else:
        def loss(x, beta):
            r = _t(x)
            return f(r, _zeros_like(r), reduction="none", beta=beta)

        def grad(x, beta):
            return _grad(lambda r: f(r, _zeros_like(r), reduction="sum", beta=beta), x)
    return loss, grad


def regression_losses() -> InteractiveFigure:
    """L1, MSE, Huber(δ) and SmoothL1(β) and their gradients against the residual.

    Defined in :doc:`/chapters/04_loss_family`.
    """
    x = np.linspace(-3, 3, 121)
    names = {"L1": "L1", "MSE": "MSE", "Huber": "Huber (δ)", "SmoothL1": "SmoothL1 (β)"}
    pairs = {name: _regression(name) for name in names}
    loss = Panel("loss", x, [Curve(label, pairs[n][0]) for n, label in names.items()],
                 xlabel="residual x − y", ylabel="loss l_n", ylim=(0, 4))
    grad = Panel("gradient", x, [Curve(label, pairs[n][1]) for n, label in names.items()],
                 xlabel="residual x − y", ylabel="∂l_n / ∂x_n", ylim=(-3, 3))
    return InteractiveFigure(
        "regression-losses",
        [Slider("delta", "Huber δ", 0.1, 3.0, 0.1, 1.0,
                help="where Huber turns from quadratic to linear, and the size of its gradient "
                     "beyond"),
         Slider("beta", "SmoothL1 β", 0.1, 3.0, 0.1, 0.5,
                help="where SmoothL1 turns from quadratic to linear; its gradient beyond is "
                     "always ±1")],
        [loss, grad], description="Regression losses and their gradients against the residual",
        explanation="L1, MSE, Huber and SmoothL1 against the residual x − y: the loss on the "
                    "left, its gradient on the right. MSE's gradient grows with the residual; "
                    "L1's is −1 or +1 everywhere. Huber and SmoothL1 are quadratic for residuals "
                    "smaller than their threshold and linear beyond it, so their gradients are "
                    "straight lines through 0 that level off: Huber's at ±δ, SmoothL1's at ±1.")


# -- chapter 05: forward and reverse KL -------------------------------------

_GRID = torch.linspace(-7, 7, 1401, dtype=_F64)  # the chapter's integration grid
_DX = float(_GRID[1] - _GRID[0])


def _normal_pdf(x, mu, sigma):
    return torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _mixture(x):
    return 0.5 * _normal_pdf(x, -2.0, 0.6) + 0.5 * _normal_pdf(x, 2.0, 0.6)


def _kl_rows(a, b):
    """KL(a || b) per row for densities on the grid: sum a log(a/b) dx, via kl_div(log b, a)."""
    return kl_div((b * _DX).clamp_min(1e-300).log(), a * _DX, reduction="none").sum(dim=-1)


def _fits(mu, sigma):
    """q = N(mu, sigma^2) on the grid, one row per (mu, sigma) pair (1-d arrays, broadcast)."""
    mu, sigma = torch.broadcast_tensors(_t(np.atleast_1d(mu)), _t(np.atleast_1d(sigma)))
    return _normal_pdf(_GRID[None, :], mu[:, None], sigma[:, None])


def _forward_kl(mu, sigma):
    q = _fits(mu, sigma)
    return _kl_rows(_mixture(_GRID).expand_as(q), q)


def _reverse_kl(mu, sigma):
    q = _fits(mu, sigma)
    return _kl_rows(q, _mixture(_GRID).expand_as(q))


def kl_gaussian_fit() -> InteractiveFigure:
    """Fit N(μ, σ²) to ½N(−2, 0.6²) + ½N(2, 0.6²): forward and reverse KL as μ and σ move.

    Defined in :doc:`/chapters/05_kl_divergence`.
    """
    mu = Slider("mu", "mean μ of q", -3.0, 3.0, 0.1, 0.0, help="moves q left and right")
    sigma = Slider("sigma", "width σ of q", 0.3, 3.5, 0.1, 1.0, help="widens or narrows q")
    forward, reverse = "forward KL(p‖q)", "reverse KL(q‖p)"
    densities = Panel("densities", np.linspace(-6, 6, 241), [
        Curve("target p (mixture)", lambda x: _mixture(_t(x)), color="#7f7f7f"),
        Curve("fit q = N(μ, σ²)", lambda x, mu, sigma: _normal_pdf(_t(x), mu, sigma),
              color="#2ca02c",
              expr="exp(-0.5 * pow((x - mu) / sigma, 2)) / (sigma * sqrt(2 * PI))"),
    ], xlabel="x", ylabel="density", ylim=(0, 1.0))
    along_mu = Panel("KL as μ moves (σ fixed)", mu.grid, [
        Curve(forward, lambda x, sigma: _forward_kl(x, sigma)),
        Curve(reverse, lambda x, sigma: _reverse_kl(x, sigma)),
    ], xlabel="μ", ylabel="nats", ylim=(0, 4),
        markers=[Marker(forward, "mu"), Marker(reverse, "mu")])
    along_sigma = Panel("KL as σ moves (μ fixed)", sigma.grid, [
        Curve(forward, lambda x, mu: _forward_kl(mu, x)),
        Curve(reverse, lambda x, mu: _reverse_kl(mu, x)),
    ], xlabel="σ", ylabel="nats", ylim=(0, 4),
        markers=[Marker(forward, "sigma"), Marker(reverse, "sigma")])
    return InteractiveFigure(
        "kl-gaussian-fit", [mu, sigma], [densities, along_mu, along_sigma],
        description="Forward and reverse KL of a Gaussian fit to a two-mode mixture",
        explanation="Left: the target p, two equal Gaussian bumps at −2 and 2, and the fit "
                    "q = N(μ, σ²). Middle and right: both divergences as μ moves (σ fixed) and "
                    "as σ moves (μ fixed), with dots at the current μ and σ. Forward KL(p‖q) is "
                    "smallest with q centred between the bumps and wide enough to cover both; "
                    "reverse KL(q‖p), for a narrow q, is smallest with q on one bump (μ near −2 "
                    "or 2) at that bump's width.")


# -- chapter 06: training loss per learning rate ----------------------------

STEPS, N_TRAIN = 100, 512


@lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits  # ships with scikit-learn: nothing is downloaded

    digits = load_digits()
    X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))[:N_TRAIN]
    return X[perm], y[perm]


@cache
def _run(log_lr: float, reduction: str) -> tuple[float, ...]:
    """Full-batch gradient descent on N_TRAIN digits with the chapter's 64-32-10
    network: the training cross-entropy (per example) before each step and after
    the last one, NaN from the step it diverges on."""
    X, y = _digits()
    with torch.random.fork_rng():  # the same initial weights every run, the caller's RNG untouched
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                    torch.nn.Linear(32, 10))
    opt = torch.optim.SGD(model.parameters(), lr=10.0 ** log_lr)
    curve = []
    for step in range(STEPS + 1):
        loss = cross_entropy(model(X), y, reduction=reduction)
        per_example = loss.item() / (N_TRAIN if reduction == "sum" else 1)
        if not math.isfinite(per_example):
            break
        curve.append(per_example)
        if step < STEPS:
            opt.zero_grad()
            loss.backward()
            opt.step()
    return tuple(curve + [math.nan] * (STEPS + 1 - len(curve)))


def training_lr() -> InteractiveFigure:
    """Training loss of the digits classifier for each learning rate, with 'mean' or 'sum'
    (full-batch gradient descent, so the curves are not blurred by batch noise).

    Defined in :doc:`/chapters/06_training`.
    """
    log_lr = Slider("log_lr", "log₁₀ learning rate", -4.0, 1.0, 0.5, 0.0,
                    help="the learning rate is 10 to this power")
    reduction = Choice("reduction", "reduction", ("mean", "sum"), "mean",
                       help=f"'sum' makes the gradient {N_TRAIN} times that of 'mean'")
    steps = np.arange(STEPS + 1)
    curves = Panel("training loss during gradient descent", steps, [
        Curve("this learning rate", lambda x, log_lr, reduction: _run(float(log_lr), reduction)),
        Curve("lr = 1, mean", lambda x: _run(0.0, "mean"),
              color="#888888", dashed=True),
    ], xlabel="step", ylabel="training cross-entropy", ylim=(0, 2.6))
    final = f"after {STEPS} steps"
    sweep = Panel(f"loss after {STEPS} steps, per learning rate", log_lr.grid, [
        Curve(final, lambda x, reduction: [_run(float(v), reduction)[-1] for v in x]),
    ], xlabel="log₁₀ learning rate", ylabel="training cross-entropy", ylim=(0, 2.6),
        markers=[Marker(final, "log_lr")])
    return InteractiveFigure(
        "training-lr", [log_lr, reduction], [curves, sweep],
        description="Training loss curves of the digits classifier per learning rate",
        explanation=f"Left: the training cross-entropy of the digits classifier over {STEPS} "
                    "steps of full-batch gradient descent at the chosen learning rate and "
                    "reduction, with the run at learning rate 1 and 'mean' dashed grey for "
                    f"reference. Right: the loss after {STEPS} steps for every learning rate, a "
                    "dot at the chosen one. Too small a rate barely lowers the loss from log 10 "
                    "≈ 2.3; too large a one leaves it there or sends it up. With 'mean' the best "
                    "rate is 1; with 'sum' the gradient is 512 times larger and the best rate "
                    "about 10^−2.5.")
