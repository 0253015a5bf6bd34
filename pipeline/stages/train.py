"""DVC stage: fix + model on train, calibration and threshold on calib -> ``<out>/model.joblib``:
one estimator whose ``predict`` applies the run's threshold (``decision.Decider``), signed (see
``trusted``) so that the evaluate stage loads only what this stage wrote."""

from __future__ import annotations

import sys

from pipeline import data, experiment, trusted
from pipeline.errors import ConfigError
from pipeline.stages import arguments, load_params


def main() -> None:
    args = arguments(__doc__ or "", "data", "out")
    cfg = load_params(args.params)
    try:
        trusted.check_key()  # before the fit: a key that cannot sign is refused with nothing written
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    fitted = experiment.fit(cfg, data.read_splits(args.data))
    args.out.mkdir(parents=True, exist_ok=True)
    trusted.dump(fitted.model, args.out / "model.joblib")  # signed: evaluate loads only what this wrote


if __name__ == "__main__":
    from pipeline.interrupts import quick_exit

    main()
    quick_exit(0)  # without the interpreter's teardown (about 0.45 s)
