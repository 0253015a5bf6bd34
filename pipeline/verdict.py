"""The verdict across runs: paired differences against a control, ranks across datasets, the
Friedman test and its Nemenyi post-hoc. Pure functions of a table of cells; ``pipeline.report``
reads that table from a store and writes what these compute.

A *cell* is what two configurations must share to be compared: dataset, positive rate, model,
seed and fold (and any split or cost setting the runs vary). A *configuration* is everything
else a run varies: fix, calibration, threshold policy and their parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: Metrics where a smaller value is better; every other metric is better larger.
LOWER_IS_BETTER = ("test/ece", "test/brier", "test/expected_cost", "test/log_loss", "test/adaptive_ece")
#: The columns that name a cell; a block (one row of the rank table) is a cell without seed and fold.
CELL = ("dataset", "positive_rate", "model", "seed", "fold")
BLOCK = ("dataset", "positive_rate")
CONTROL_LABEL = "control"


#: Metrics of the scores alone: the decision threshold cannot change them.
SCORE_ONLY = ("test/pr_auc", "test/roc_auc", "test/brier", "test/ece", "test/log_loss", "test/adaptive_ece")


def without_threshold(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells with the threshold policy taken out of each configuration, for the metrics of
    the scores alone: configurations that differ only in their threshold have the same scores,
    so they become one (the first run of each cell is kept), as does the control."""
    strip = cells["label"].str.replace(r"(^| )threshold=\S+", "", regex=True).str.strip().replace("", "default")
    control = set(strip[cells["config"] == CONTROL_LABEL])
    config = strip.where(~strip.isin(control), CONTROL_LABEL)
    keys = [c for c in cells.columns if c not in ("run_id", "label", "config") and not c.startswith("test/")]
    return cells.assign(config=config).drop_duplicates([*keys, "config"])


def better(metric: str) -> int:
    """+1 where larger is better, -1 where smaller is."""
    return -1 if metric in LOWER_IS_BETTER else 1


def short(metric: str) -> str:
    return metric.removeprefix("test/")


@dataclass(frozen=True)
class Paired:
    """One configuration against the control on one metric, over the cells both have."""

    model: str
    config: str
    control_model: str
    metric: str
    mean: float
    low: float
    high: float
    wins: float
    cells: int
    datasets: int
    interval: str

    @property
    def outcome(self) -> str:
        """``better``, ``worse`` or ``tie`` (the 95% interval holds 0)."""
        sign = better(self.metric)
        if sign * self.low > 0 and sign * self.high > 0:
            return "better"
        if sign * self.low < 0 and sign * self.high < 0:
            return "worse"
        return "tie"


def paired(cells: pd.DataFrame, metrics: list[str], extra: list[str], test_share: float) -> list[Paired]:
    """Every non-control configuration against the control (``config == "control"``), metric by
    metric, on matched cells only. A model with no control run of its own is compared with each
    model's control on the cells they share otherwise (``control_model`` says which).

    The 95% interval is a t-interval over the datasets' mean differences when the cells span
    several datasets (datasets are the independent units); on one dataset it is the corrected
    resampled t-interval of Nadeau and Bengio (2003) over its cells, whose training sets
    overlap (``test_share`` = test rows / training rows of one cell)."""
    keys = [*CELL, *extra]
    control = cells[cells["config"] == CONTROL_LABEL]
    others = cells[cells["config"] != CONTROL_LABEL]
    out = []
    for (model, config), runs in others.groupby(["model", "config"], sort=True):
        own = control[control["model"] == model]
        choices = [(model, own)] if len(own) else list(control.groupby("model", sort=True))
        for control_model, reference in choices:
            on = [k for k in keys if k != "model"] if control_model != model else keys
            matched = runs.merge(reference, on=on, suffixes=("", "@control"))
            for metric in metrics:
                if metric not in matched or matched[metric].isna().all():
                    continue
                pair = matched[[*on, metric, f"{metric}@control"]].dropna()
                out.append(_paired(str(model), str(config), str(control_model), metric, pair, test_share))
    return out


def _paired(model: str, config: str, control_model: str, metric: str, pair: pd.DataFrame, share: float) -> Paired:
    diff = pair[metric] - pair[f"{metric}@control"]
    sign = better(metric)
    wins = float(np.mean(np.where(sign * diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0)))) if len(diff) else np.nan
    by_block = diff.groupby([pair[k] for k in BLOCK], dropna=False).mean()
    if len(by_block) >= 2:
        low, high = _t_interval(by_block.to_numpy(), 1.0 / len(by_block))
        how = f"t over {len(by_block)} datasets"
    else:
        low, high = _t_interval(diff.to_numpy(), 1.0 / max(len(diff), 1) + share)
        how = f"corrected resampled t over {len(diff)} cells"
    return Paired(model, config, control_model, metric, float(diff.mean()) if len(diff) else np.nan, low, high,
                  wins, len(diff), len(by_block), how)  # fmt: skip


def _t_interval(values: np.ndarray, variance_factor: float) -> tuple[float, float]:
    """Mean +- t * sqrt(factor * s^2): factor 1/n is the plain t-interval."""
    if len(values) < 2:
        return np.nan, np.nan
    half = stats.t.ppf(0.975, len(values) - 1) * np.sqrt(variance_factor * np.var(values, ddof=1))
    return float(values.mean() - half), float(values.mean() + half)


def paired_frame(rows: list[Paired]) -> pd.DataFrame:
    frame = pd.DataFrame([{**r.__dict__, "outcome": r.outcome} for r in rows])
    return frame if len(frame) else pd.DataFrame(columns=[*Paired.__dataclass_fields__, "outcome"])


@dataclass(frozen=True)
class Ranking:
    """Configurations ranked within each dataset block (1 = best) on one metric."""

    group: str
    metric: str
    table: pd.DataFrame  # blocks x configurations: the metric's mean over seeds and folds
    ranks: pd.DataFrame  # the same shape: rank within each block
    dropped: int  # blocks left out because a configuration has no run there
    statistic: float  # Friedman's chi-square (nan with fewer than 3 configurations or 2 blocks)
    p_value: float
    critical_difference: float  # Nemenyi's, at 0.05
    nemenyi: pd.DataFrame | None  # pairwise p-values

    @property
    def average(self) -> pd.Series:
        return self.ranks.mean().sort_values()


def block_table(cells: pd.DataFrame, metric: str, column: str, extra: list[str]) -> tuple[pd.DataFrame, int]:
    """Blocks (dataset, rate and ``extra``) x ``column`` values: the metric's mean over seeds
    and folds; only blocks where every configuration has a value (the number dropped beside)."""
    blocks = [*BLOCK, *extra]
    table = cells.pivot_table(index=blocks, columns=column, values=metric, aggfunc="mean", dropna=False)
    complete = table.dropna()
    return complete, len(table) - len(complete)


def rank(cells: pd.DataFrame, metric: str, column: str, extra: list[str], group: str) -> Ranking:
    """Average ranks, the Friedman test and the Nemenyi post-hoc for the ``column`` values."""
    table, dropped = block_table(cells, metric, column, extra)
    ranks = (better(metric) * -table).rank(axis=1, method="average")
    n_blocks, k = table.shape
    statistic = p_value = cd = np.nan
    nemenyi = None
    if k >= 3 and n_blocks >= 2:
        statistic, p_value = (float(v) for v in stats.friedmanchisquare(*(table[c].to_numpy() for c in table)))
        cd = float(stats.studentized_range.ppf(0.95, k, np.inf) / np.sqrt(2) * np.sqrt(k * (k + 1) / (6 * n_blocks)))
        import scikit_posthocs

        nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(table.reset_index(drop=True))
    return Ranking(group, metric, table, ranks, dropped, statistic, p_value, cd, nemenyi)


def sentences(rows: list[Paired], rankings: list[Ranking], control: str, metrics: list[str]) -> str:
    """The verdict in a few sentences, written from the numbers."""
    frame = paired_frame(rows)
    clauses = []
    for metric in metrics:
        part = frame[frame["metric"] == metric]
        if not len(part):
            continue
        winners = part[part["outcome"] == "better"].sort_values("mean", ascending=better(metric) < 0)
        losers = part[part["outcome"] == "worse"].sort_values("mean", ascending=better(metric) > 0)
        clause = (
            f"on {short(metric)} {len(winners)} of {len(part)} are better, {len(losers)} worse and "
            f"{len(part) - len(winners) - len(losers)} within the noise"
        )
        for word, chosen in (("best", winners), ("worst", losers)):
            if len(chosen):
                top = chosen.iloc[0]
                clause += (
                    f" ({word}: {top['model']} {top['config']}, {top['mean']:+.3f} "
                    f"[{top['low']:+.3f}, {top['high']:+.3f}])"
                )
        clauses.append(clause)
    if not clauses:
        return "No configuration shares a cell with the control: nothing to compare."
    out = [f"Against the control ({control}) on matched cells, with 95% intervals: {'; '.join(clauses)}."]
    headline = [r for r in rankings if r.metric == metrics[0] and not np.isnan(r.statistic)]
    for ranking in headline:
        avg = ranking.average
        verdict = "differ" if ranking.p_value < 0.05 else "do not differ detectably"
        found = [
            (str(c).removesuffix(CONTROL_LABEL).strip(), r) for c, r in avg.items() if str(c).endswith(CONTROL_LABEL)
        ]
        controls = ", ".join(f"{model} {r:.2f}".strip() for model, r in found)
        controls = f"the control{'s' if len(found) > 1 else ''} {controls}"
        out.append(
            f"Ranked on {short(ranking.metric)} over {len(ranking.table)} datasets ({ranking.group}), the "
            f"{ranking.table.shape[1]} configurations {verdict} (Friedman chi2 = {ranking.statistic:.1f}, "
            f"p = {ranking.p_value:.2g}): best {avg.index[0]} (average rank {avg.iloc[0]:.2f}), "
            f"{controls}, Nemenyi's critical difference {ranking.critical_difference:.2f}."
        )
    return " ".join(out)


#: Params that name a cell (what a configuration must share with its control), not a configuration.
CELL_PREFIXES = ("dataset.", "imbalance.", "split.", "costs.", "metrics.")
#: Params that describe how a run was tracked or shown, not what it computed.
IGNORED_PREFIXES = ("tracking.", "study", "resume", "leaderboard", "hydra")


def cell_frame(params: pd.DataFrame, control: dict[str, str], key: str = "--control") -> pd.DataFrame:
    """One row per run (``params``: its flattened config, as text): the cell columns and the
    configuration's label, ``control`` for the runs matching every ``control`` pair."""
    from pipeline.errors import ConfigError

    params = params.fillna("-").astype(str)
    varying = [c for c in params.columns if params[c].nunique() > 1 and not c.startswith(IGNORED_PREFIXES)]
    config_keys = [c for c in varying if not c.startswith(CELL_PREFIXES) and c not in ("model.name", "seed")]
    labels = pd.Series([_label(row, config_keys, params) for _, row in params.iterrows()], index=params.index)
    wanted = ",".join(f"{k}={v}" for k, v in control.items())
    is_control = pd.Series(True, index=params.index)
    for name, value in control.items():
        if name not in params:
            raise ConfigError(key, f"{name}={value}", f"keys the runs have, such as {', '.join(config_keys)}")
        is_control &= params[name] == value
    if not is_control.any():
        raise ConfigError(key, wanted, "pairs some runs match")
    found = sorted(set(labels[is_control]))
    if len(found) > 1:
        why = f"they match {len(found)}: {'; '.join(found)}"
        raise ConfigError(key, wanted, "pairs that pick one configuration", why=why)
    return pd.DataFrame(
        {
            "config": labels.where(~is_control, CONTROL_LABEL),
            "label": labels,
            "dataset": [_dataset(p, varying) for _, p in params.iterrows()],
            "positive_rate": params["imbalance.positive_rate"].map(_rate),
            "model": params["model.name"],
            "seed": params["seed"].astype(int),
            "split": params.get("split.name", pd.Series("default", index=params.index)),
            "test_share": [_test_share(p) for _, p in params.iterrows()],
            **{k: params[k] for k in varying if k.startswith(CELL_PREFIXES[2:])},
        },
        index=params.index,
    )


def _label(row: pd.Series, keys: list[str], params: pd.DataFrame) -> str:
    """``fix=smote threshold=max_f1``: the group names that vary, and the other keys that vary
    among runs of the same option (``fix.k_neighbors=3``)."""
    parts = []
    for key in keys:
        group, _, leaf = key.partition(".")
        if leaf == "name":
            parts.append(f"{group}={row[key]}")
        elif row[key] != "-":
            option = params.get(f"{group}.name", pd.Series("", index=params.index))
            same = params[option == row.get(f"{group}.name", "")]
            if same[key].nunique() > 1:
                parts.append(f"{key}={row[key]}")
    return " ".join(parts) or "default"


def _dataset(p: pd.Series, varying: list[str]) -> str:
    keys = [k for k in varying if k.startswith("dataset.") and k != "dataset.name"]
    extra = [f"{k.removeprefix('dataset.')}={p[k]}" for k in keys]
    return p["dataset.name"] + (f" ({', '.join(extra)})" if extra else "")


def _rate(text: str) -> str:
    return "natural" if text in ("None", "null", "-") else text


def _test_share(p: pd.Series) -> float:
    """Test rows over training rows of one cell (Nadeau and Bengio's n2/n1)."""
    if p.get("split.name") == "cv":
        return 1.0 / (int(p["split.folds"]) - 1)
    test = float(p.get("split.test", 0.3))
    return test / (1.0 - test)
