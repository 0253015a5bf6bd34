"""Write ``params.yaml`` for the default config exactly as DVC's Hydra composition does.

``dvc repro`` reads ``params.yaml`` as it is; ``dvc exp run`` recomposes it. Run this (``make
params``) after changing ``conf/`` so the committed file does not drift (a test checks it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dvc.utils.hydra import compose_and_dump

from pipeline.paths import CONF_DIR, REPO_ROOT


def compose_params(output: Path, overrides: list[str] | None = None) -> None:
    compose_and_dump(output, str(CONF_DIR), None, "config", str(REPO_ROOT), overrides or [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for `dvc exp run -S`")
    compose_params(REPO_ROOT / "params.yaml", parser.parse_args().overrides)


if __name__ == "__main__":
    main()
