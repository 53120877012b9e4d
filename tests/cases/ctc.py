"""Cases of the CTC loss: small sequences (T <= 8 frames, S <= 4 labels, C <= 5 classes).

Drawn targets always have a possible alignment (enough frames for the labels
and the blanks between repeats); impossible ones, empty sequences, -inf
log-probabilities and the other corners are fixed inputs in EXTREMES.
"""

import math

import torch
from hypothesis import strategies as st

from strategies import REDUCTIONS, grid

from . import ALL_CAPABILITIES, Case, Extreme, Rejection

F64 = torch.float64

CAPABILITIES = ALL_CAPABILITIES
# What torch itself cannot do: its CTC backward (_ctc_loss_backward) has no derivative in
# derivatives.yaml, _ctc_loss has no forward-mode derivative, and its CPU kernel exists for
# float32 and float64 only. The test asserts that lossutils raises what torch raises.
_SECOND = "torch has no derivative of _ctc_loss_backward (derivatives.yaml)"
_FORWARD = "torch has no forward-mode derivative of _ctc_loss"
_HALF = "torch's CPU ctc_loss kernel exists for float32 and float64 only"
TORCH_CANNOT = {"gradgradcheck": _SECOND, "second": _SECOND, "jacfwd": _FORWARD,
                "hessian": _FORWARD, "half:float16": _HALF, "half:bfloat16": _HALF}


def _log_normalise(x, dim=-1):
    """Rows of log-probabilities (a log-softmax from max / exp / log)."""
    m = x.max(dim=dim, keepdim=True).values
    return x - m - torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))


def _frames_needed(labels):
    """One frame per label plus one blank between each pair of equal neighbours."""
    return len(labels) + sum(a == b for a, b in zip(labels, labels[1:], strict=False))


def _lengths(kind, values):
    """The lengths spelled as torch accepts them: a tuple, a list, or an integer tensor."""
    if kind == "tuple":
        return tuple(values)
    if kind == "list":
        return list(values)
    return torch.tensor(values, dtype=torch.int64 if kind == "tensor" else torch.int32)


def _ctc(draw, options):
    """log_probs (T, N, C) or (T, C), padded or concatenated targets, lengths in any accepted
    spelling."""
    blank = options.get("blank", 0)
    C = draw(st.integers(max(2, blank + 1), 5))
    N = draw(st.integers(1, 3))
    labels = st.integers(0, C - 1).filter(lambda c: c != blank)
    targets = [draw(st.lists(labels, min_size=0, max_size=4)) for _ in range(N)]
    needed = [_frames_needed(t) for t in targets]
    T = draw(st.integers(max(max(needed), 1), 8))
    input_lengths = [draw(st.integers(max(n, 1) if n else 0, T)) for n in needed]
    input_lengths[0] = T  # the longest sequence fills the tensor, as a padded batch does
    target_lengths = [len(t) for t in targets]
    log_probs = _log_normalise(draw.randn(T, N, C, scale=2.0))
    unbatched = N == 1 and draw(st.booleans())
    if unbatched:
        log_probs, target = log_probs[:, 0], torch.tensor(targets[0], dtype=torch.int64)
        il, tl = (torch.tensor(input_lengths[0]),
                  torch.tensor(target_lengths[0])) if draw(st.booleans()) \
            else (tuple(input_lengths), tuple(target_lengths))
        return (log_probs, target, il, tl), {}
    if draw(st.booleans()):  # concatenated
        target = torch.tensor([c for t in targets for c in t], dtype=torch.int64)
    else:  # padded with junk past each length (never read)
        S = max(max(target_lengths), 1) + draw(st.integers(0, 1))
        target = draw.randint(0, C, N, S)
        for b, t in enumerate(targets):
            target[b, : len(t)] = torch.tensor(t, dtype=torch.int64)
    # both lengths alike, as torch requires. With 'mean', torch's ctc_loss under torch.func
    # (grad, jacrev) raises for tuple/list lengths ("Cannot access data pointer of Tensor that
    # doesn't have storage", torch 2.13), so this sample spells them as tensors there; the
    # fixed EXTREMES seeded-padded-mean and empty-target-mean keep tuple/list + 'mean'.
    spellings = ["tuple", "list", "tensor", "int32"]
    if options.get("reduction", "mean") == "mean":
        spellings = spellings[2:]
    kind = draw(st.sampled_from(spellings))
    return (log_probs, target, _lengths(kind, input_lengths), _lengths(kind, target_lengths)), {}


# torch's CTC gradient is not the derivative of its value: it folds in a
# log-softmax Jacobian (d/d log y = y - ...), as if log_probs came out of a
# log_softmax. So gradcheck differentiates ctc_loss(_log_normalise(x)) w.r.t. x,
# where the two agree; the parity test compares gradients with torch's directly.
CASES = [
    Case("ctc_loss", _ctc,
         grid(reduction=REDUCTIONS, zero_infinity=(False, True)) + [dict(blank=2)],
         module="CTCLoss", grad=(0,), rtol=1e-5, atol=1e-5, torch_cannot=TORCH_CANNOT,
         gradcheck_input=lambda log_probs, *rest: (_log_normalise(log_probs), *rest)),
]


def _lp(T=5, N=2, C=4, seed=0, dtype=F64):
    return _log_normalise(torch.randn(T, N, C, generator=torch.Generator().manual_seed(seed),
                                      dtype=dtype))


def _call(log_probs, targets, input_lengths, target_lengths, **kw):
    return lambda: ((log_probs, targets, input_lengths, target_lengths), kw)


_TG = torch.tensor([[1, 2], [3, 1]])


def _reject(build, match, id, module=False, **module_kwargs):
    return Rejection("ctc_loss", build, match=match, id=id, module="CTCLoss" if module else None,
                     module_kwargs=module_kwargs)


REJECTIONS = [
    _reject(_call(_lp(), _TG, [5, 5], [2, 2], reduction="avg"),
            "avg is not a valid value for reduction",
            "bad-reduction", module=True, reduction="avg"),
    _reject(_call(_lp(), _TG, [5, 5], [2, 2], blank=4),
            r"blank must be in label range \[0, 4\): got blank=4",
            "blank-too-big", module=True, blank=4),
    _reject(_call(_lp(), _TG, [5, 5], [2, 2], blank=-1), r"blank must be in label range.*blank=-1",
            "blank-negative"),
    _reject(_call(_lp(), _TG, [5, 5], [2, 2], blank=1.0),
            r"blank must be an int.*got float \(1.0\)", "float-blank"),
    _reject(_call(_lp(), _TG, [5, 5], [2, 2], blank=True), r"blank must be an int.*got bool",
            "bool-blank"),
    _reject(_call(_lp(), _TG, [5, 5, 5], [2, 2]),
            r"input_lengths must be of size batch_size 2: got 3", "input-lengths-count"),
    _reject(_call(_lp(), _TG, [5, 5], [2]), r"target_lengths must be of size batch_size 2: got 1",
            "target-lengths-count"),
    _reject(_call(_lp(), _TG, [6, 5], [2, 2]), r"input_lengths must be in \[0, 5\].*\[6, 5\]",
            "input-length-over-T"),
    _reject(_call(_lp(), _TG, [-1, 5], [2, 2]), r"input_lengths must be in \[0, 5\].*\[-1, 5\]",
            "input-length-negative"),
    _reject(_call(_lp(), _TG, [5, 5], [-1, 2]), r"target_lengths must be at least 0.*\[-1, 2\]",
            "target-length-negative"),
    _reject(_call(_lp(), _TG, [5, 5], [3, 2]),
            r"at least max\(target_lengths\) = 3 columns: got shape \(2, 2\)",
            "target-length-over-S"),
    _reject(_call(_lp(), torch.tensor([1, 2, 3]), [5, 5], [2, 2]),
            r"sum\(target_lengths\) = 4 entries: got size 3", "concatenated-size"),
    _reject(_call(_lp(), torch.tensor([[1, 2]]), [5, 5], [2, 2]),
            r"batch_size 2 rows: got shape \(1, 2\)", "padded-rows"),
    _reject(_call(_lp(), _TG[None], [5, 5], [2, 2]), r"targets must be \(N, S\) or 1-D.*got 3 dims",
            "targets-3d"),
    _reject(_call(_lp()[None], _TG, [5, 5], [2, 2]),
            r"log_probs must be \(T, C\) or \(T, N, C\): got shape "
            r"\(1, 5, 2, 4\)", "log-probs-4d"),
    _reject(_call(_lp()[:, 0, 0], _TG[0], [5], [2]), r"got shape \(5,\)", "log-probs-1d"),
    _reject(_call(_lp().half(), _TG, [5, 5], [2, 2]),
            "log_probs must be float32 or float64, got torch.float16", "half"),
    _reject(_call(torch.zeros(5, 2, 4, dtype=torch.int64), _TG, [5, 5], [2, 2]),
            "log_probs must be float32 or float64, got torch.int64", "integer-log-probs"),
    _reject(_call(torch.empty(0, 2, 4, dtype=F64), _TG, [0, 0], [2, 2]),
            r"must not be empty: got shape \(0, 2, 4\)", "empty"),
    _reject(_call(_lp(), _TG, torch.tensor([5.0, 5.0]), torch.tensor([2, 2])),
            "input_lengths must be integral: got a tensor of dtype torch.float32",
            "float-length-tensor"),
    _reject(_call(_lp(), _TG, torch.tensor([5, 5]), [2, 2]),
            "both be tensors or both be tuples/lists of ints: got "
            "Tensor and list", "mixed-length-types"),
    _reject(_call(_lp(T=5, N=1)[:, 0], _TG[0], 5, 2),
            "input_lengths must be a tensor or a tuple/list of ints, got int", "int-lengths"),
    _reject(_call(_lp(), _TG, [5.0, 5.0], [2, 2]),
            r"input_lengths must hold ints, got \[5.0, 5.0\]", "float-lengths"),
]


def _inf_lp(positions, T=5, N=2, C=4):
    lp = _lp(T, N, C, seed=3)
    for t, b, c in positions:
        lp[t, b, c] = -math.inf
    return lp


def _seeded(layout, seed, dtype=F64):
    """A fixed ordinary batch (not a corner): the gradient parity the hypothesis case cannot do."""
    lp = _lp(T=7, N=3, C=5, seed=seed, dtype=dtype)
    labels = [[1, 2, 2, 4], [3, 1], [4, 4, 4]]
    il, tl = [7, 6, 7], [4, 2, 3]
    if layout == "unbatched":
        return _call(lp[:, 0], torch.tensor(labels[0]), torch.tensor(7), torch.tensor(4))
    if layout == "concatenated":
        return _call(lp, torch.tensor([c for t in labels for c in t]), torch.tensor(il),
                     torch.tensor(tl))
    padded = torch.tensor([t + [0] * (4 - len(t)) for t in labels])
    return _call(lp, padded, tuple(il), tuple(tl))


EXTREMES = [
    *(Extreme("ctc_loss", _seeded(layout, seed), id=f"seeded-{layout}-{red}",
              options=dict(reduction=red))
      for seed, layout in enumerate(("padded", "concatenated", "unbatched")) for red in REDUCTIONS),
    Extreme("ctc_loss",
            _call(_lp(T=7, N=3, C=5, seed=7),
                  torch.tensor([[1, 0, 0, 4], [3, 1, 9, 9], [4, 4, 3, 9]]),
                              (7, 6, 7), (4, 2, 3)), id="seeded-blank-2",
            options=dict(blank=2, reduction="mean")),
    Extreme("ctc_loss", _seeded("padded", 8, dtype=torch.float32), id="seeded-float32",
            options=dict(reduction="sum"), rtol=1e-5, atol=1e-5),
    # [1, 1, 1] needs 5 frames (a blank between the repeats); 4 make it impossible: inf, nan
    # gradient.
    *(Extreme("ctc_loss", _call(_lp(), torch.tensor([[1, 1, 1], [2, 3, 0]]), [4, 5], [3, 2]),
              id=f"impossible-{red}-zero_infinity={zi}",
              options=dict(reduction=red, zero_infinity=zi))
      for red in REDUCTIONS for zi in (False, True)),
    # no frames at all: an empty target has loss -0.0, any other inf (and no frame to take nan).
    Extreme("ctc_loss", _call(_lp(), torch.tensor([[1, 2], [3, 1]]), [0, 0], [0, 2]),
            id="no-frames", options=dict(reduction="none")),
    # the empty target: all blanks; 'mean' divides by max(0, 1) = 1.
    Extreme("ctc_loss", _call(_lp(), torch.tensor([[1, 2], [3, 1]]), [5, 3], [0, 2]),
            id="empty-target-mean"),
    # log y = -inf (probability 0): torch's gradient there is exp(-inf - -inf) = nan.
    Extreme("ctc_loss",
            _call(_inf_lp([(2, 0, 1), (3, 1, 0)]), torch.tensor([[1, 2], [3, 1]]), [5, 4], [2, 2]),
            id="neg-inf-log-probs", options=dict(reduction="sum")),
    # a label equal to the blank as the last label: torch's last frame keeps only the label's
    # alpha*beta.
    Extreme("ctc_loss", _call(_lp(), torch.tensor([[1, 2], [3, 1]]), [5, 4], [2, 2]),
            id="last-label-is-blank", options=dict(reduction="none", blank=2)),
    # unnormalised, far from 0: every exp would under/overflow without the max shift.
    Extreme("ctc_loss", _call(_lp() * 300 - 500, torch.tensor([[1, 2], [3, 3]]), [5, 5], [2, 2]),
            id="huge-log-probs", options=dict(reduction="none")),
    Extreme("ctc_loss",
            _call(_lp(dtype=torch.float32) * 40, torch.tensor([1, 2, 3, 1]), (5, 5), (2, 2)),
            id="float32-peaked", options=dict(reduction="mean"), rtol=1e-5, atol=1e-5),
    # float targets are truncated to int64, as torch's .to(kLong) does.
    Extreme("ctc_loss", _call(_lp(), torch.tensor([[1.7, 2.2], [3.9, 1.0]]), [5, 4], [2, 2]),
            id="float-targets", options=dict(reduction="none")),
]
