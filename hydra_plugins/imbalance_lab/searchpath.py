"""Put the repository root on Hydra's search path, so `experiments/` is a config group."""

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from pipeline.paths import REPO_ROOT


class ExperimentsSearchPath(SearchPathPlugin):
    """Named studies live in `experiments/` at the top level, beside `conf/`."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if (Path(REPO_ROOT) / "experiments").is_dir():
            search_path.append(provider="imbalance-lab", path=f"file://{REPO_ROOT}")
