"""DVC stage: fix + model on train, calibration and threshold on calib -> ``<out>/model.joblib``:
one estimator whose ``predict`` applies the run's threshold (``decision.Decider``)."""

from __future__ import annotations

import joblib

from pipeline import data, experiment
from pipeline.stages import arguments, load_params


def main() -> None:
    args = arguments(__doc__ or "", "data", "out")
    cfg = load_params(args.params)
    fitted = experiment.fit(cfg, data.read_splits(args.data))
    args.out.mkdir(parents=True, exist_ok=True)
    joblib.dump(fitted.model, args.out / "model.joblib")


if __name__ == "__main__":
    main()
