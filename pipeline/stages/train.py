"""DVC stage: fix + model on train, calibration and threshold on calib -> ``<out>/model.joblib``
and ``<out>/threshold.json``."""

from __future__ import annotations

import json

import joblib

from pipeline import data, experiment
from pipeline.stages import arguments, load_params


def main() -> None:
    args = arguments(__doc__ or "", "data", "out")
    cfg = load_params(args.params)
    fitted = experiment.fit(cfg, data.read_splits(args.data))
    args.out.mkdir(parents=True, exist_ok=True)
    joblib.dump(fitted, args.out / "model.joblib")
    decision = {"threshold": fitted.decision.threshold, "policy": cfg.threshold.name, **fitted.decision.info}
    (args.out / "threshold.json").write_text(json.dumps(decision, indent=1))


if __name__ == "__main__":
    main()
