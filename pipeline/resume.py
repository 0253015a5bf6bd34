"""Resume a study: a job whose configuration already has a FINISHED run is kept, not rerun.

A job's identity is its ``config_hash`` tag (everything that decides its numbers) plus the data
fingerprint. A run made by other code, another git commit or a dirty work tree, is reused only
with ``resume=any_code``. Runs that dead processes left RUNNING are ended by
``tracking.reconcile`` when the store is opened, so they are rerun like FAILED and KILLED ones.

Several processes may resume one sweep at once (a crashed sweep restarted twice, two machines on
one server): a job's run carries its identity from its creation, and a process that finds an
older live run (or a FINISHED one) of the same identity removes its own and leaves the job to its
holder (``claim``); at the sweep's end the jobs others held are read back (``settle``), so every
configuration is computed once and every leaderboard is whole.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
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


def identity(cfg: DictConfig) -> dict[str, str]:
    """The tags that say which configuration on which data a run is (what resume keeps by)."""
    from pipeline import experiment

    return {"config_hash": experiment.config_hash(cfg), "data_fingerprint": experiment.fingerprint(cfg)}


def claim(how: bool | str, tags: dict[str, str]) -> Callable[[Any, str, Any], str | None]:
    """``tracking.track``'s claim for a resumed job: the run id of another holder of its identity,
    a FINISHED run this resume may keep, or a RUNNING run of a live process created before this
    one (by start time, then run id), else None."""

    def holder(client: Any, experiment_id: str, mine: Any) -> str | None:
        from pipeline.tracking import dead, git_tags

        here = git_tags()
        query = " and ".join(f"tags.{k} = '{v}'" for k, v in tags.items())
        for run in client.search_runs([experiment_id], query, max_results=1000):
            info = run.info
            if info.run_id == mine.run_id or run.data.tags.get("sweep") == "true":
                continue
            if info.status == "FINISHED" and (how == "any_code" or same_code(run.data.tags, here)):
                return str(info.run_id)
            earlier = (info.start_time, info.run_id) < (mine.start_time, mine.run_id)
            if info.status == "RUNNING" and earlier and not dead(run.data.tags):
                return str(info.run_id)
        return None

    return holder


def claimed_record(run_name: str, params: dict[str, str], holder: str) -> dict[str, Any]:
    """A job another process is computing: its record until ``settle`` reads the result back."""
    return {"status": "CLAIMED", "run_name": run_name, "run_id": holder, "params": params, "metrics": {}}


def settle(client: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Claimed jobs read back from the store, waiting while their holders run: FINISHED -> kept,
    anything else -> FAILED (``resume=true`` runs it again). The wait says what it waits for and
    ends when a holder's process is gone or stopped."""
    claimed = [r for r in records if r["status"] == "CLAIMED"]
    if claimed:
        names = ", ".join(r["run_name"] for r in claimed[:3]) + (", ..." if len(claimed) > 3 else "")
        print(f"waiting for {len(claimed)} job(s) another process is running ({names})", file=sys.stderr)
    return [_settled(client, r) if r["status"] == "CLAIMED" else r for r in records]


def _settled(client: Any, record: dict[str, Any]) -> dict[str, Any]:
    import socket

    from pipeline.tracking import dead, process_stat

    while True:
        run = client.get_run(record["run_id"])
        tags = run.data.tags
        here = tags.get("host") == socket.gethostname()  # a stopped (Ctrl-Z) holder can be seen only here
        stopped = here and process_stat(tags.get("pid", "0"))[:1] in (["T"], ["t"])
        if run.info.status != "RUNNING" or dead(tags) or stopped:
            break
        time.sleep(0.5)
    if run.info.status == "FINISHED":
        return kept_record(run, record["params"])
    why = f"claimed by run {run.info.run_id}, which ended {run.info.status}; resume=true runs it again"
    return {**record, "status": "FAILED", "error": why, "user_error": False}
