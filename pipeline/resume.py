"""Resume a study: a job whose configuration already has a FINISHED run is kept, not rerun.

A job's identity is its ``config_hash`` tag (everything that decides its numbers) plus the data
fingerprint. A run made by other code, another git commit or a dirty work tree, is reused only
with ``resume=any_code``. Runs that dead processes left RUNNING are ended by
``tracking.reconcile`` when the store is opened, so they are rerun like FAILED and KILLED ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from pipeline.errors import ConfigError


def mode(cfg: DictConfig) -> bool | str:
    """``cfg.resume`` checked: false, true or any_code."""
    value = cfg.get("resume", False)
    if isinstance(value, bool) or value == "any_code":
        return value
    raise ConfigError("resume", value, "false, true (runs of this code only) or any_code")


def same_code(tags: dict[str, str], here: dict[str, str]) -> bool:
    """Whether a run was made by this code: the same commit, neither tree dirty."""
    commit = "mlflow.source.git.commit"
    return tags.get(commit) == here[commit] and tags.get("git_dirty") == "false" and here["git_dirty"] == "false"


@dataclass
class Finished:
    """The FINISHED job runs of an experiment by config hash, split by whether this code made them."""

    reusable: dict[str, list[Any]]
    other_code: dict[str, list[Any]]

    def kept(self, config_hash: str, fingerprint: str) -> Any | None:
        """The newest reusable run of this configuration on the same data."""
        runs = [r for r in self.reusable.get(config_hash, []) if r.data.tags.get("data_fingerprint") == fingerprint]
        return max(runs, key=lambda r: r.info.start_time) if runs else None


def finished(client: Any, experiment: str, how: bool | str) -> Finished:
    """The experiment's FINISHED job runs (sweep parents left out), sorted by reusability."""
    from pipeline.tracking import git_tags

    here, found = git_tags(), Finished({}, {})
    for run in client.search_runs([experiment], "attributes.status = 'FINISHED'", max_results=50_000):
        tags = run.data.tags
        if "config_hash" not in tags or tags.get("sweep") == "true":
            continue
        ours = how == "any_code" or same_code(tags, here)
        (found.reusable if ours else found.other_code).setdefault(tags["config_hash"], []).append(run)
    return found


def plan_line(hashes: list[str], found: Finished) -> str:
    """``resuming: 40 finished runs kept, 60 to run`` (and what other code made, not reused)."""
    kept = sum(h in found.reusable for h in hashes)
    line = f"resuming: {kept} finished runs kept, {len(hashes) - kept} to run"
    other = sum(h in found.other_code and h not in found.reusable for h in hashes)
    if other:
        line += (
            f"; {other} job(s) have FINISHED runs made by other code (another commit or a dirty tree), "
            "not reused: resume=any_code reuses them"
        )
    return line


def kept_run(cfg: DictConfig, how: bool | str) -> Any | None:
    """The FINISHED run this job can keep: same config hash, same data, code as ``how`` allows."""
    from pipeline import experiment, tracking

    uri, experiment_id = tracking.prepare(cfg)
    key = (uri, experiment_id, how)
    if key not in _finished:  # read once per process: a sweep's jobs are distinct configurations
        _finished[key] = finished(tracking.client_for(uri), experiment_id, how)
    return _finished[key].kept(experiment.config_hash(cfg), experiment.fingerprint(cfg))


_finished: dict[tuple[str, str, bool | str], Finished] = {}


def kept_record(run: Any, params: dict[str, str]) -> dict[str, Any]:
    """A sweep record for a kept job: its metrics read back from the store, not recomputed."""
    return {
        "status": "KEPT",
        "run_name": run.info.run_name,
        "run_id": run.info.run_id,
        "params": params,
        "metrics": dict(run.data.metrics),
        "info": {"config_hash": run.data.tags["config_hash"]},
    }
