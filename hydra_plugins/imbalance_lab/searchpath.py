"""imbalance-lab's Hydra plugin: the config schema, and `experiments/` as a config group.

Hydra imports plugin modules before it composes anything, in every process that composes
this project's config: the app, the tests, and DVC's own composition of `params.yaml`. So the
schema is registered here, once, the way Hydra's own plugins register their configs.
"""

from pathlib import Path

from hydra._internal.core_plugins.file_config_source import FileConfigSource
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.config_store import ConfigStore
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult
from hydra.plugins.search_path_plugin import SearchPathPlugin

from pipeline.paths import REPO_ROOT
from pipeline.schema import Config

ConfigStore.instance().store(name="base_config", node=Config)


class StudiesConfigSource(FileConfigSource):
    """The repository root as a config source that holds one group, `experiments`.

    A plain `file://` source at the root would make every folder there a config group:
    `--help` would walk `.venv`, `outputs` and every MLflow artifact folder, for minutes."""

    GROUP = "experiments"

    @staticmethod
    def scheme() -> str:
        return "imbalance-lab-studies"

    def _inside(self, config_path: str) -> bool:
        return config_path.strip("/").split("/")[0] == self.GROUP

    def is_group(self, config_path: str) -> bool:
        return (config_path.strip("/") == "" or self._inside(config_path)) and super().is_group(config_path)

    def is_config(self, config_path: str) -> bool:
        return self._inside(config_path) and super().is_config(config_path)

    def list(self, config_path: str, results_filter: ObjectType | None) -> list[str]:
        if config_path.strip("/") == "":
            wanted = results_filter in (None, ObjectType.GROUP)
            return [self.GROUP] if wanted and super().is_group(self.GROUP) else []
        return super().list(config_path, results_filter) if self._inside(config_path) else []

    def load_config(self, config_path: str) -> ConfigResult:
        if not self._inside(config_path):
            raise ConfigLoadError(f"Config not found: {config_path} (this source holds {self.GROUP}/ only)")
        return super().load_config(config_path)


class ExperimentsSearchPath(SearchPathPlugin):
    """Named studies live in `experiments/` at the top level, beside `conf/`."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if (Path(REPO_ROOT) / "experiments").is_dir():
            search_path.append(provider="imbalance-lab", path=f"{StudiesConfigSource.scheme()}://{REPO_ROOT}")
