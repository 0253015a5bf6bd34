"""imbalance-lab's Hydra plugin: the config schema, and `experiments/` as a config group.

Hydra imports plugin modules before it composes anything, in every process that composes
this project's config: the app, the tests, and DVC's own composition of `params.yaml`. So the
schema is registered here, once, the way Hydra's own plugins register their configs.
"""

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.config_store import ConfigStore
from hydra.plugins.search_path_plugin import SearchPathPlugin

from pipeline.paths import REPO_ROOT
from pipeline.schema import Config

ConfigStore.instance().store(name="base_config", node=Config)


class ExperimentsSearchPath(SearchPathPlugin):
    """Named studies live in `experiments/` at the top level, beside `conf/`."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if (Path(REPO_ROOT) / "experiments").is_dir():
            search_path.append(provider="imbalance-lab", path=f"file://{REPO_ROOT}")
