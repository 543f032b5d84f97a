"""Model families plug their config keys into the engine through package entry points.

A family (``mask_former``, and later ``mask2former`` and ``semask``) declares in its packaging::

    entry_points={"segcore.model_families": ["mask_former = mask_former.config:add_mask_former_config"]}

``add_model_family_configs(cfg)`` imports every declared family (which registers its
meta-architectures, heads and dataset mappers) and adds its keys, so one ``train_net.py`` and one
``demo/demo.py`` serve all families while ``segcore`` imports no model code.
"""
from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import List

__all__ = ["ENTRY_POINT_GROUP", "add_model_family_configs", "get_model_families"]

ENTRY_POINT_GROUP = "segcore.model_families"


def get_model_families() -> List:
    """The installed families' entry points, sorted by name (so ``mask_former`` precedes ``mask2former``'s
    extensions deterministically)."""
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def add_model_family_configs(cfg) -> List[str]:
    """Add the config keys of every installed model family to ``cfg`` (in place).

    Returns:
        The names of the families added.

    Raises:
        RuntimeError: no family is installed (the package was not installed with pip, so its
            entry points are missing).
    """
    families = get_model_families()
    if not families:
        raise RuntimeError(
            f"No model family is registered under the entry-point group '{ENTRY_POINT_GROUP}'. "
            "Install the project (`pip install -e .` in the repository) so that mask_former and the "
            "other families are found.")
    for ep in families:
        add_fn = ep.load()
        add_fn(cfg)
        logging.getLogger(__name__).debug("Added config keys of model family %s", ep.name)
    return [ep.name for ep in families]
