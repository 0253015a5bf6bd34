"""Results that the store did not take, kept on disk and logged later.

When logging a finished job fails (the tracking server went down, the database refused), the
job's results are written to ``<job folder>/unlogged/``: ``run.json`` (params, metrics, tags, the
run's note) and ``artifacts/`` (what the run would have logged). The job still ends FAILED.
Once the store is back::

    python -m pipeline.relog outputs/sweeps/<study>/<time>     # every unlogged/ below it

completes the same run (its id was kept) or, if the store never had it, creates it, logs
everything, ends it FINISHED with the tag ``relogged=true`` and removes the folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from pipeline import credentials

FOLDER = "unlogged"


class Unlogged(RuntimeError):
    """Logging a finished job's results failed; they are on disk."""


def job_folder() -> Path:
    """The Hydra job's output folder (the current one outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path.cwd()


def keep(
    run_id: str,
    experiment: str,
    uri: str,
    cfg: DictConfig,
    result: Any,
    note: str,
    err: BaseException,
    folder: Path | None = None,
) -> BaseException:
    """Write what the run computed to ``unlogged/`` and return the error to raise: ``Unlogged``
    naming the folder, or ``err`` itself if the folder cannot be written (a full disk, or ``err``
    came from writing the run's files in the first place). ``folder``: the job's folder (default:
    the current Hydra job's)."""
    from pipeline import tracking

    tracking.unreachable(err)  # later calls to a server that is gone get one try each
    where = (folder or job_folder()) / FOLDER
    part = where.with_name(FOLDER + ".part")
    try:
        shutil.rmtree(part, ignore_errors=True)
        (part / "artifacts").mkdir(parents=True)
        tracking.write_artifacts(part / "artifacts", cfg, result)
        record = {
            "run_id": run_id,
            "experiment": experiment,
            "uri": tracking.masked(uri),
            "run_name": tracking.run_name(cfg),
            "params": tracking.flatten(cfg),
            "metrics": {k: float(v) for k, v in result.metrics.items()},
            "history": {k: [float(v) for v in values] for k, values in result.history.items()},
            "tags": {**{k: str(v) for k, v in result.info.items()}, "mlflow.note.content": note},
        }
        (part / "run.json").write_text(json.dumps(record, indent=1))
        shutil.rmtree(where, ignore_errors=True)
        part.rename(where)
    except Exception:  # a full disk, or the error was in writing the files themselves
        shutil.rmtree(part, ignore_errors=True)
        return err
    first = tracking.short(str(err).strip().splitlines()[0]) if str(err).strip() else type(err).__name__
    return Unlogged(f"logging the results failed ({first}); kept in {where}: python -m pipeline.relog {where}")


def log(folder: Path, uri: str | None) -> str:
    """Log one ``unlogged/`` folder; return the run id. The folder is removed once logged."""
    from mlflow.entities import Param, RunTag

    from pipeline import tracking

    record = json.loads((folder / "run.json").read_text())
    uri = tracking.resolve_uri(uri or record["uri"])
    client = tracking.client_for(uri)
    run_id = record["run_id"]
    try:
        said = client.get_run(run_id).data.tags
    except Exception:  # the store never had it (or lost it): a new run with the same content
        experiment = tracking.experiment_in(client, record["experiment"], uri)
        run_id, said = client.create_run(experiment, run_name=record["run_name"]).info.run_id, {}
        client.log_batch(run_id, params=[Param(k, v) for k, v in record["params"].items()])
    for stale in ("error", "reconciled"):  # what the failed or reconciled run said of itself
        if stale in said:
            client.delete_tag(run_id, stale)
    tags = {**record["tags"], "relogged": "true"}
    tracking.log_metrics(client, run_id, record["metrics"], record.get("history", {}))
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    client.log_artifacts(run_id, str(folder / "artifacts"))
    client.set_terminated(run_id, "FINISHED")
    shutil.rmtree(folder)
    return str(run_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Log the results a store did not take (unlogged/ folders).")
    parser.add_argument("paths", nargs="+", type=Path, help="job or sweep folders (searched for unlogged/)")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        type=credentials.taken,
        help="the store (default: the one each run was meant for)",
    )
    args = parser.parse_args(argv)
    # only folders named unlogged/ that keep's run.json is in: relog removes each once logged
    found = {p for path in args.paths for p in [path, *path.rglob(FOLDER)] if p.name == FOLDER}
    folders = sorted(p for p in found if (p / "run.json").is_file() and not p.is_symlink())
    if not folders:
        print(f"error: paths={' '.join(map(str, args.paths))} hold no {FOLDER}/run.json", file=sys.stderr)
        sys.exit(2)
    failed = 0
    for folder in folders:
        try:
            print(f"logged {folder} as run {log(folder, args.tracking_uri)}")
        except Exception as err:  # the store is still away, or refused: the folder stays for the next try
            from pipeline.tracking import one_line

            print(f"error: {folder} not logged ({credentials.mask(one_line(err))}); it is kept", file=sys.stderr)
            failed += 1
    if failed:
        sys.exit(2 if failed == len(folders) else 1)


if __name__ == "__main__":
    from pipeline.interrupts import quick_exit

    main()
    quick_exit(0)  # without the interpreter's teardown (about 0.45 s)
