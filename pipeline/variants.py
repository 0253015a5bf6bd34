"""smote-variants (Kovacs 2019) behind imbalanced-learn's sampler interface.

``fix=smote_variants fix.method=MWMOTE`` picks any of its oversamplers by name. The package is
installed with ``--no-deps`` (its declared dependencies pull tensorflow, keras and mkl, and the
PyPI package ``statistics``, which shadows Python's own module), and it is imported only when a
run uses it.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.utils import check_random_state

from pipeline.errors import ConfigError

#: Older names that users of smote-variants' benchmark will type.
ALIASES = {"polynom_fit_SMOTE": "polynom_fit_SMOTE_star"}


def oversamplers() -> dict[str, Any]:
    """smote-variants' oversamplers by name (its INFO logging turned down)."""
    import smote_variants

    logging.getLogger("smote_variants").setLevel(logging.WARNING)
    return {cls.__name__: cls for cls in smote_variants.get_all_oversamplers()}


class SmoteVariants(BaseOverSampler):
    """One smote-variants oversampler, chosen by ``method``.

    Parameters
    ----------
    method : str, the oversampler's class name in smote-variants (MWMOTE, ProWSyn, SMOTE_IPF,
        Lee, SMOBD, polynom_fit_SMOTE_star, ...).
    sampling_strategy : as for imblearn's over-samplers; translated to smote-variants'
        ``proportion`` (the share of the majority-minority gap to fill).
    params : dict, further arguments of that oversampler.
    random_state : int, RandomState or None.
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseOverSampler._parameter_constraints,
        "method": [str],
        "params": [dict, None],
        "random_state": ["random_state"],
    }
    #: Its oversamplers interpolate continuous features: refused on categorical columns.
    euclidean = True

    def __init__(
        self, method: str = "MWMOTE", sampling_strategy: Any = "auto", params: dict | None = None,
        random_state: Any = None,
    ) -> None:  # fmt: skip
        super().__init__(sampling_strategy=sampling_strategy)
        self.method = method
        self.params = params
        self.random_state = random_state

    def _fit_resample(self, X: Any, y: np.ndarray) -> tuple[Any, np.ndarray]:
        known = oversamplers()
        name = ALIASES.get(self.method, self.method)
        if name not in known:
            raise ConfigError("fix.method", self.method, ", ".join(sorted(known)))
        labels, counts = np.unique(y, return_counts=True)
        if len(labels) != 2:
            raise ValueError(f"smote-variants resamples two classes; y has {len(labels)}")
        minority, gap = labels[np.argmin(counts)], int(counts.max() - counts.min())
        n_new = int(self.sampling_strategy_.get(minority, 0))
        if n_new == 0 or gap == 0:
            return X, y
        seed = int(check_random_state(self.random_state).randint(2**31))
        try:
            sampler = known[name](proportion=n_new / gap, random_state=seed, **(self.params or {}))
        except TypeError as err:
            raise ConfigError("fix.params", self.params, f"arguments of smote_variants.{name}", why=str(err)) from None
        X_res, y_res = sampler.sample(np.asarray(X, dtype=np.float64), np.asarray(y))
        n_min = int(counts.min())
        if int(np.sum(y_res == minority)) <= n_min:  # smote-variants logs a warning and hands the data back
            raise ConfigError(
                "fix.method", self.method, "an oversampler that works with this many positives, or more positives",
                why=f"smote-variants' {name} made no synthetic rows from {n_min} training positives",
            )  # fmt: skip
        return X_res, np.asarray(y_res, dtype=y.dtype)
