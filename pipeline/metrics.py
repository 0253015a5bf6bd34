"""The metric suite: pure functions of labels, scores, a threshold, costs and groups.

Accuracy is never reported alone: ``baseline_accuracy`` (always predicting the majority
class) stands beside it.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.special import expit

from pipeline.decision import Costs, ThresholdTable

N_BINS = 15


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error with ``n_bins`` equal-width bins (default 15) on [0, 1] over
    the positive-class probability: sum over bins of (bin share) x |mean label - mean score|.
    A score of exactly 1.0 falls in the last bin."""
    bins = np.minimum((np.asarray(p) * n_bins).astype(int), n_bins - 1)
    gap = np.bincount(bins, weights=np.asarray(y) - p, minlength=n_bins)
    return float(np.abs(gap).sum() / len(p))


def recall_at_precision(
    y: np.ndarray, p: np.ndarray, min_precision: float, table: ThresholdTable | None = None
) -> float:
    """The highest recall reached at any threshold with precision >= ``min_precision`` (0 if
    none); ``table``: the threshold table of (y, p) when the caller has it."""
    table = ThresholdTable.of(y, p) if table is None else table
    ok = (table.precision >= min_precision) & (table.tp > 0)
    return float(table.recall[ok].max()) if ok.any() else 0.0


def expected_cost(y: np.ndarray, pred: np.ndarray, costs: Costs) -> float:
    """Mean cost per case of the 0/1 decisions ``pred``."""
    fp = np.sum((pred == 1) & (y == 0))
    fn = np.sum((pred == 0) & (y == 1))
    return float((costs.fp * fp + costs.fn * fn) / len(y))


def suite(y: np.ndarray, p: np.ndarray, threshold: float, costs: Costs) -> dict[str, float]:
    """Every headline metric of scores ``p`` on labels ``y`` at ``threshold``: scikit-learn's
    definitions (zero_division=0), computed from one confusion table and one threshold table
    (each scikit-learn call validates and re-counts its inputs: 12 of them cost 30 ms on 6,000
    rows, this 2 ms; ``tests/test_metrics.py`` holds them equal to scikit-learn's)."""
    y, p = np.asarray(y), np.asarray(p, dtype=float)
    pred = (p >= threshold).astype(int)
    positive = y == 1
    tp, fp = int(np.sum(pred[positive])), int(np.sum(pred[~positive]))
    fn, tn = int(positive.sum()) - tp, int((~positive).sum()) - fp
    n, prevalence = len(y), float(np.mean(y))
    table = ThresholdTable.of(y, p)
    return {
        "accuracy": (tp + tn) / n,
        "baseline_accuracy": max(prevalence, 1 - prevalence),
        "balanced_accuracy": float(np.mean([r for r in (_ratio(tp, tp + fn), _ratio(tn, tn + fp)) if r is not None])),
        "precision": _ratio(tp, tp + fp) or 0.0,
        "recall": _ratio(tp, tp + fn) or 0.0,
        "f1": fbeta(tp, fp, fn, 1.0),
        "f2": fbeta(tp, fp, fn, 2.0),
        "mcc": _mcc(tp, fp, fn, tn),
        "pr_auc": average_precision(y, p),
        "roc_auc": _table_roc_auc(table),
        "recall_at_p90": recall_at_precision(y, p, 0.9, table),
        "expected_cost": expected_cost(y, pred, costs),
        "brier": float(np.mean((y - p) ** 2)),
        "log_loss": _log_loss(y, p),
        "ece": ece(y, p),
        **calibration(y, p),
        "prevalence": prevalence,
        "predicted_positive_rate": float(pred.mean()),
    }


def _ratio(top: int, bottom: int) -> float | None:
    return top / bottom if bottom else None


def fbeta(tp: int, fp: int, fn: int, beta: float) -> float:
    """F-beta from confusion counts, 0 when there is no positive, predicted or true."""
    weight = beta * beta
    bottom = (1 + weight) * tp + weight * fn + fp
    return (1 + weight) * tp / bottom if bottom else 0.0


def _mcc(tp: int, fp: int, fn: int, tn: int) -> float:
    """Matthews correlation as scikit-learn computes it (0 when a margin is constant)."""
    n, correct = tp + fp + fn + tn, tp + tn
    true_sums, pred_sums = (tn + fp, fn + tp), (tn + fn, fp + tp)
    cov_ytyp = correct * n - sum(t * q for t, q in zip(true_sums, pred_sums, strict=True))
    cov_ypyp = n * n - sum(q * q for q in pred_sums)
    cov_ytyt = n * n - sum(t * t for t in true_sums)
    return 0.0 if cov_ypyp * cov_ytyt == 0 else float(cov_ytyp / np.sqrt(float(cov_ytyt) * float(cov_ypyp)))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """scikit-learn's average precision of one sample (NaN without a positive): the bootstrap's
    ``_average_precision`` with every row counted once."""
    return float(_average_precision(np.asarray(y, dtype=float), np.asarray(p, dtype=float), np.ones((1, len(y))))[0])


def _table_roc_auc(table: ThresholdTable) -> float:
    """The area under the ROC curve by the trapezoid rule (NaN with one class)."""
    if not table.n_pos or not table.n_neg:
        return float("nan")
    fpr, tpr = np.r_[0, table.fp[:-1]] / table.n_neg, np.r_[0, table.tp[:-1]] / table.n_pos
    return float(np.trapezoid(tpr, fpr))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood, scores clipped to [eps, 1 - eps] as scikit-learn does."""
    eps = np.finfo(p.dtype).eps
    q = np.clip(p, eps, 1 - eps)
    return float(-np.mean(np.where(y == 1, np.log(q), np.log1p(-q))))


def adaptive_ece(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE over ``n_bins`` equal-mass bins: the sorted scores cut into near-equal counts, each
    cut moved down to the start of its run of equal scores. Tied rows then share a bin, so the
    value depends on the (score, label) pairs only, not on the order of the rows (isotonic
    output has a few dozen distinct scores; cut by position, ties fell on both sides at random).
    Bins emptied by the moves are dropped."""
    order = np.argsort(p, kind="stable")
    s, gap = np.asarray(p)[order], (np.asarray(y) - np.asarray(p))[order]
    sizes = np.array([len(b) for b in np.array_split(s, n_bins)])
    cuts = np.cumsum(sizes)[:-1]
    cuts = cuts[(cuts > 0) & (cuts < len(s))]
    starts = np.unique(np.r_[0, np.searchsorted(s, s[cuts], side="left")])
    return float(np.abs(np.add.reduceat(gap, starts)).sum() / len(s))


def logit_domain(p: np.ndarray) -> np.ndarray:
    """The rows whose score has a logit: strictly between 0 and 1."""
    return (p > 0) & (p < 1)


def calibration_line(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of the logistic recalibration logit P(y=1) = a + b logit(p) (Cox 1958).

    Perfect calibration is (0, 1); a slope below 1 means over-confident scores. Fitted by
    Newton's method with step halving (unpenalised) on the rows whose score lies strictly
    between 0 and 1. A score of exactly 0 or 1 has no logit: clipping it to a constant would
    let that constant decide the slope (0.989 to 0.869 as the clip went from 1e-3 to 1e-12 on
    isotonic output), so such rows are left out and ``calibration_excluded_share`` reports how
    many; ECE and Brier still judge them. NaN when the rows left hold only one class.
    """
    inside = logit_domain(p)
    y, q = np.asarray(y)[inside], np.asarray(p)[inside]
    if not 0 < y.sum() < len(y):
        return float("nan"), float("nan")
    x = np.column_stack([np.ones_like(q), np.log(q) - np.log1p(-q)])
    beta = np.zeros(2)
    loglik = _loglik(x, y, beta)
    for _ in range(100):
        mu = expit(x @ beta)
        hessian = x.T @ (x * (mu * (1 - mu))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, x.T @ (y - mu))
        while _loglik(x, y, beta + step) < loglik and np.abs(step).max() > 1e-12:
            step = step / 2  # the log-likelihood is concave: a short enough step improves it
        beta, previous, loglik = beta + step, loglik, _loglik(x, y, beta + step)
        if loglik - previous < 1e-12:
            break
    return float(beta[0]), float(beta[1])


def _loglik(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    z = x @ beta
    return float(np.sum(y * z - np.logaddexp(0, z)))


def brier_parts(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS) -> dict[str, float]:
    """Murphy's (1973) decomposition over ``n_bins`` equal-width bins:
    brier ~= reliability - resolution + uncertainty (exact when scores are constant per bin)."""
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    n = np.bincount(bins, minlength=n_bins).astype(float)
    seen = n > 0
    mean_p = np.bincount(bins, weights=p, minlength=n_bins)[seen] / n[seen]
    mean_y = np.bincount(bins, weights=y, minlength=n_bins)[seen] / n[seen]
    share, base = n[seen] / len(p), float(np.mean(y))
    return {
        "brier_reliability": float(np.sum(share * (mean_p - mean_y) ** 2)),
        "brier_resolution": float(np.sum(share * (mean_y - base) ** 2)),
        "brier_uncertainty": base * (1 - base),
    }


def calibration(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The calibration block of the suite."""
    intercept, slope = calibration_line(y, p)
    return {
        "adaptive_ece": adaptive_ece(y, p),
        "calibration_intercept": intercept,
        "calibration_slope": slope,
        "calibration_excluded_share": float(1 - logit_domain(np.asarray(p)).mean()),
        **brier_parts(y, p),
    }


def group_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """What is reported per subgroup value (pr_auc, recall only where both classes occur)."""
    pred = p >= threshold
    out = {"prevalence": float(y.mean()), "ece": ece(y, p), "brier": float(np.mean((p - y) ** 2))}
    if (y == 0).any():
        out["fpr"] = float(pred[y == 0].mean())
    if 0 < y.sum() < len(y):
        out["pr_auc"] = average_precision(y, p)
        out["recall"] = float(pred[y == 1].mean())
        slope = calibration_line(y, p)[1]
        if not np.isnan(slope):
            out["calibration_slope"] = slope
    return out


def by_group(
    y: np.ndarray, p: np.ndarray, threshold: float, values: np.ndarray, prefix: str = "", n_boot: int = 0, seed: int = 0
) -> dict[str, float]:
    """Per value ``v`` of the subgroup column ``values``: ``v/n`` and every ``group_metrics``
    entry, each with a seeded bootstrap 95% interval (``v/<m>_lo``, ``v/<m>_hi``, rows
    resampled within the group) when ``n_boot`` > 0. Keys start with ``prefix``. Also the
    largest gaps between values: ``<prefix>ece_gap`` and ``<prefix>recall_gap``."""
    out: dict[str, float] = {}
    rng = np.random.default_rng(seed)
    per_value: dict[str, dict[str, float]] = {}
    for value in pd.unique(values):
        mask = values == value
        yg, pg = y[mask], p[mask]
        found = group_metrics(yg, pg, threshold)
        per_value[str(value)] = found
        key = metric_key(f"{prefix}{value}")
        out[f"{key}/n"] = float(mask.sum())
        out.update({f"{key}/{m}": v for m, v in found.items()})
        out.update({f"{key}/{m}": v for m, v in _intervals(yg, pg, threshold, found, n_boot, rng).items()})
    for metric in ("ece", "recall"):
        found_values = [m[metric] for m in per_value.values() if metric in m]
        if len(found_values) > 1:
            out[f"{metric_key(prefix)}{metric}_gap" if prefix else f"{metric}_gap"] = max(found_values) - min(
                found_values
            )
    return out


def _intervals(
    y: np.ndarray, p: np.ndarray, threshold: float, point: dict[str, float], n_boot: int, rng: np.random.Generator
) -> dict[str, float]:
    """Percentile 95% intervals of ``group_metrics`` over ``n_boot`` resamples of the rows.

    Each resample is the same draw as ``rows = rng.integers(0, n, n)`` followed by
    ``group_metrics(y[rows], p[rows])``, computed at once for a block of resamples as row
    counts (``bootstrap_metrics``): no per-resample sort or scikit-learn call."""
    if n_boot <= 0:
        return {}
    draws: dict[str, list[np.ndarray]] = {m: [] for m in point}
    block = max(1, min(n_boot, BOOT_BLOCK_CELLS // max(len(y), 1)))
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        rows = rng.integers(0, len(y), (size, len(y)))  # the same draws as one call per resample
        rows += np.arange(size)[:, None] * len(y)  # one bincount for the block: resample i, row j at i n + j
        counts = np.bincount(rows.ravel(), minlength=size * len(y)).reshape(size, len(y)).astype(float)
        for m, values in bootstrap_metrics(y, p, threshold, counts).items():
            if m in draws:
                draws[m].append(values[~np.isnan(values)])
    out = {}
    for m, parts in draws.items():
        values = np.concatenate(parts) if parts else np.empty(0)
        if len(values) >= n_boot // 2:  # a metric undefined in most resamples gets no interval
            out[f"{m}_lo"], out[f"{m}_hi"] = (float(q) for q in np.percentile(values, [2.5, 97.5]))
    return out


#: Resamples x rows held at once while bootstrapping (about 16 MB per float array).
BOOT_BLOCK_CELLS = 2_000_000


def bootstrap_metrics(y: np.ndarray, p: np.ndarray, threshold: float, counts: np.ndarray) -> dict[str, np.ndarray]:
    """``group_metrics`` of each resample given as row counts (one row of ``counts`` per
    resample); NaN where a metric is undefined in that resample (as ``group_metrics`` leaves
    it out). Rows sharing a score and a label are pooled first: every metric here is a sum over
    rows that depends on nothing else (isotonic calibration leaves a few dozen distinct scores)."""
    y, p, counts = _pooled(np.asarray(y, dtype=float), np.asarray(p, dtype=float), counts)
    pred = (p >= threshold).astype(float)
    bins = np.minimum((p * N_BINS).astype(int), N_BINS - 1)
    in_bin = np.zeros((len(y), N_BINS))
    in_bin[np.arange(len(y)), bins] = y - p  # each row's gap, in its bin's column
    # every per-row sum at once: one product of the counts with the rows' terms
    terms = np.column_stack([np.ones_like(y), y, 1 - y, (p - y) ** 2, pred * (1 - y), pred * y, in_bin])
    n, pos, neg, squared, false_pos, true_pos, *_ = (sums := counts @ terms).T
    gap = sums[:, 6:]
    both = (pos > 0) & (neg > 0)
    nan = np.full(len(counts), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "prevalence": pos / n,
            "ece": np.abs(gap).sum(axis=1) / n,
            "brier": squared / n,
            "fpr": np.where(neg > 0, false_pos / neg, nan),
            "pr_auc": np.where(both, _average_precision(y, p, counts), nan),
            "recall": np.where(both, true_pos / pos, nan),
            "calibration_slope": _calibration_slopes(y, p, counts),
        }
    return out


def _pooled(y: np.ndarray, p: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One column per distinct (score, label), its counts summed, when that is at most half the rows."""
    scores, score_of = np.unique(p, return_inverse=True)
    if len(scores) > len(y) // 2:  # there are at least as many cells as scores
        return y, p, counts
    cells, inverse = np.unique(2 * score_of + (y == 1), return_inverse=True)  # sorted by score, then label
    if len(cells) > len(y) // 2:
        return y, p, counts
    order = np.argsort(inverse, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(inverse[order])) + 1]
    return (cells % 2).astype(float), scores[cells // 2], np.add.reduceat(counts[:, order], starts, axis=1)


def _average_precision(y: np.ndarray, p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """scikit-learn's average precision, sum over thresholds of (R_k - R_k-1) P_k, for each
    row of ``counts`` (the rows sorted once; a threshold is each distinct score). Recall moves
    only at a threshold whose run of equal scores holds a positive row, so only those terms are
    summed: the counts up to each are running sums of per-segment totals (whole numbers, exact)."""
    order = np.argsort(-p, kind="stable")
    ps, ys, w = p[order], y[order], counts[:, order]
    last = np.r_[np.flatnonzero(np.diff(ps)), len(ps) - 1]  # the end of each run of equal scores
    positives_upto = np.cumsum(ys)[last].astype(int)
    moves = last[np.diff(positives_upto, prepend=0) > 0]  # ends of the runs holding a positive
    if not len(moves):
        return np.full(len(w), np.nan)
    tp = np.cumsum(w[:, ys == 1], axis=1)[:, np.cumsum(ys)[moves].astype(int) - 1]
    segments = np.add.reduceat(w[:, : moves[-1] + 1], np.r_[0, moves[:-1] + 1], axis=1)  # rows up to each move
    predicted = np.cumsum(segments, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        gained = np.diff(tp, axis=1, prepend=0.0) / tp[:, -1:]
        precision = np.where(predicted > 0, tp / predicted, 0.0)
    return np.sum(gained * precision, axis=1)


def _calibration_slopes(y: np.ndarray, p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The slope of ``calibration_line`` for each row of ``counts`` (rows weighted by their
    count), NaN where the rows with a logit hold one class only: Newton's method run side by
    side for every resample until each converges, from the whole sample's line, which a
    resample's lies close to.

    A full Newton step is taken unchecked when it moves no logit by more than 1: the
    log-likelihood's curvature then changes by at most a factor e along it, so the step gains
    at least 0.28 of the Newton decrement (concavity). A longer step is halved until the
    log-likelihood improves, as ``calibration_line`` does. A resample stops after a step whose
    Newton decrement (twice the gain the step predicts) was below 1e-8: convergence is quadratic
    (measured: a decrement of 3e-9 is followed by 2e-19), and the slopes then agree with those
    run to rounding within 2e-11 relative (measured on 60 to 4,000 rows).

    The first step needs no resample's own scores: all start on one line, so its sums are
    matrix products with that line's ``mu``. The sums of ``w y`` are the same at every step."""
    inside = logit_domain(p)
    if not inside.all():
        y, p, counts = y[inside], p[inside], counts[:, inside]
    if not len(p):
        return np.full(len(counts), np.nan)
    x = np.log(p) - np.log1p(-p)
    x_range = np.array([x.min(), x.max()])  # a step moves the logits most at the ends of the range
    powers = np.column_stack([np.ones_like(x), x, x * x])
    pos, neg, x_pos = (counts @ np.column_stack([y, 1 - y, y * x])).T
    observed = np.column_stack([pos, x_pos])  # sum of w y (1, x) per resample: the same every step
    whole = calibration_line(y, p)
    start = whole if not np.isnan(whole[0]) else (0.0, 0.0)
    sign = 1.0 - 2.0 * y  # y z - log(1 + e^z) = -softplus(sign z) for labels 0/1

    def loglik(b: np.ndarray, w: np.ndarray) -> np.ndarray:
        t = sign * (b[:, :1] + b[:, 1:] * x)
        softplus = np.log1p(np.exp(-np.abs(t)))
        softplus += np.maximum(t, 0.0)
        return -np.einsum("ij,ij->i", w, softplus)

    beta = np.tile(np.asarray(start, dtype=float), (len(counts), 1))
    active = np.arange(len(counts))
    for step_number in range(100):
        if not len(active):
            break
        b, w = beta[active], counts[active]
        if step_number == 0:  # every resample starts on the same line: one mu for all
            mu0 = expit(start[0] + start[1] * x)
            both = w @ np.column_stack([mu0[:, None] * powers, (mu0 * mu0)[:, None] * powers])
            expected, squared = both[:, :3], both[:, 3:]
        else:
            mu = np.multiply.outer(b[:, 1], x)
            mu += b[:, :1]
            expit(mu, out=mu)
            w_mu = w * mu
            expected = w_mu @ powers  # sum of w mu (1, x, x^2)
            w_mu *= mu
            squared = w_mu @ powers
        h00, h01, h11 = (expected - squared).T  # sum of w mu (1 - mu) (1, x, x^2)
        g0, g1 = (observed[active] - expected[:, :2]).T
        h00, h11 = h00 + 1e-9, h11 + 1e-9
        det = h00 * h11 - h01 * h01
        step = np.column_stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det])
        decrement = step[:, 0] * g0 + step[:, 1] * g1
        reach = np.abs(step[:, :1] + step[:, 1:] * x_range).max(axis=1)
        far = np.flatnonzero(reach > 1.0)
        if len(far):  # halve, per resample, a long step until the log-likelihood improves (concave)
            now = loglik(b[far], w[far])
            noise = 1e-13 * np.abs(now)  # sums of many terms differ in their last digits
            while True:
                worse = (loglik(b[far] + step[far], w[far]) < now - noise) & (np.abs(step[far]).max(axis=1) > 1e-12)
                if not worse.any():
                    break
                step[far[worse]] /= 2
        beta[active] = b + step
        active = active[decrement >= 1e-8]
    return np.where((pos > 0) & (neg > 0), beta[:, 1], np.nan)


def metric_key(text: str) -> str:
    """``text`` made safe for an MLflow metric name."""
    return re.sub(r"[^0-9A-Za-z_\-. :]", "_", text) or "_"
