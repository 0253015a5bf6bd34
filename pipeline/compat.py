"""What the config alone rules out, before any heavy import: a fix that needs another kind of
model, a prior correction with no known prior. Light on purpose: a single run checks it before
its run writer opens the run (``app.task``)."""

from __future__ import annotations

import functools

from omegaconf import DictConfig, OmegaConf

from pipeline.errors import Refused
from pipeline.paths import CONF_DIR


def check_compatible(cfg: DictConfig) -> None:
    """Refuse, from the config alone, a fix that needs a kind of model (``fix.needs``) that the
    run's model is not (``model.kind``): focal_loss and balanced_batches train torch models; and
    prior correction for a model whose training prior is unknown (``model.prior_known: false``),
    where it would report a correction and change nothing."""
    if cfg.calibration.get("method") == "prior_correction" and cfg.model.get("prior_known") is False:
        model = cfg.model.name
        raise Refused(
            "calibration", cfg.calibration.name, f"calibration=platt or calibration=isotonic with model={model}",
            why=f"the prior model={model} learns under is not known, so there is nothing to correct",
        )  # fmt: skip
    needs = cfg.fix.get("needs")
    if needs and cfg.model.get("kind") != needs:
        fitting = ", ".join(f"model={m}" for m in models_of_kind(str(needs))) or f"a model of kind {needs}"
        raise Refused(
            "fix", cfg.fix.name, f"{fitting} with fix={cfg.fix.name}, or another fix with model={cfg.model.name}",
            why=f"it needs a {needs}, and model={cfg.model.name} is not one",
        )  # fmt: skip


@functools.cache
def models_of_kind(kind: str) -> tuple[str, ...]:
    """The model options (conf/model) that declare ``kind``."""
    options = sorted(CONF_DIR.joinpath("model").glob("*.yaml"))
    nodes = {p.stem: OmegaConf.load(p) for p in options}
    return tuple(name for name, node in nodes.items() if isinstance(node, DictConfig) and node.get("kind") == kind)
