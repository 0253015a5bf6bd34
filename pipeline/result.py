"""What one run produced (``RunResult``), and the form in which a run writer gets it
(``portable``): the model pickled here, so that the writer, which only writes files and store
records, never imports scikit-learn or the fix and model code to unpickle it (about 3 s of a
single run's writer; see ``pipeline.writer``)."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from pipeline import data


@dataclass
class RunResult:
    """Everything one run produced: what tracking logs and the DVC stages write."""

    metrics: dict[str, float]
    curves: dict[str, Any]
    predictions: pd.DataFrame
    model: Any
    #: The run's ``decision.Decision`` (None in a ``portable`` copy: nothing logs it).
    decision: Any
    info: dict[str, str] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    #: A few test rows: the logged model's input example and signature.
    example: pd.DataFrame | None = None
    #: Per-fold values of a cross-validated run's metrics (``split=cv``): logged as their history.
    history: dict[str, list[float]] = field(default_factory=dict)

    def attach_data(self, splits: data.Splits, dataset: str) -> None:
        """Record which data the run saw: the fingerprint tag and one input per split part."""
        from pipeline import data

        self.info["data_fingerprint"] = splits.fingerprint
        self.inputs = [{**part, "dataset": dataset} for part in data.describe(splits)]


@dataclass
class PickledModel:
    """A run's model (a ``decision.Decider``) as pickle bytes, with what logging it reads:
    its threshold, policy and info (the MLflow model's metadata) and its decisions on the
    input example (the signature's output)."""

    data: bytes
    threshold: float
    policy: str
    info: dict[str, Any]
    example_output: Any

    def saved(self) -> Any:
        """What MLflow's pickle format is given to save: an object that pickles as the model
        itself (unpickling the saved file gives the ``Decider``, not this wrapper)."""
        return _Unpickles(self.data)


class _Unpickles:
    """Pickles as ``pickle.loads(data)``; ``predict`` is there because MLflow adds the pyfunc
    flavour only to an object that has one (it unpickles the model to answer)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return pickle.loads, (self.data,)

    def predict(self, X: Any) -> Any:
        return pickle.loads(self.data).predict(X)


def portable(result: RunResult, with_model: bool = True) -> RunResult:
    """``result`` as a run writer gets it: the model pickled (``PickledModel``; none without
    ``with_model``: a run that does not log its model), no decision."""
    model = result.model
    if not with_model or model is None:
        return dataclasses.replace(result, model=None, decision=None)
    example_output = None if result.example is None else model.predict(result.example)
    pickled = PickledModel(
        pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL),
        float(model.threshold),
        str(model.policy),
        dict(model.info or {}),
        example_output,
    )
    return dataclasses.replace(result, model=pickled, decision=None)
