"""Model families plug their config keys into the engine through package entry points.

A family (``mask_former``, ``mask2former``, ``semask``) declares a :class:`ModelFamily` in its
packaging::

    entry_points={"segcore.model_families": ["mask_former = mask_former.config:FAMILY"]}

``add_model_family_configs(cfg)`` imports every declared family (which registers its
meta-architectures, heads and dataset mappers) and adds its keys, so one ``train_net.py`` and one
``demo/demo.py`` serve all families while ``segcore`` imports no model code.

Families compose: each adds only the keys that are missing (:func:`add_config_defaults`), so
adding a family twice, or in any order, gives the same config, and one family never erases the
keys or changes the defaults of another. A family that extends others names them in
``ModelFamily.extends``; families are applied in dependency order (then by name), so the
defaults of the family a key comes from are the ones that count.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Callable, Dict, List, Sequence, Tuple

__all__ = ["ENTRY_POINT_GROUP", "ModelFamily", "add_model_family_configs", "get_model_families",
           "order_families"]

ENTRY_POINT_GROUP = "segcore.model_families"


@dataclass(frozen=True)
class ModelFamily:
    """A model family: its name, its config function and the families it builds on.

    Attributes:
        name: the family's name (its entry-point name, e.g. ``"mask2former"``).
        add_config: ``add_config(cfg)`` adds the family's keys to ``cfg`` in place. It must add only
            the keys that are missing (use :func:`segcore.config.add_config_defaults`), so that it
            is idempotent and never overrides another family's keys or defaults.
        extends: names of the families whose keys and components this one builds on; they are
            applied first.
    """

    name: str
    add_config: Callable[[object], None]
    extends: Tuple[str, ...] = ()


def _load(ep: EntryPoint) -> ModelFamily:
    obj = ep.load()
    if isinstance(obj, ModelFamily):
        if obj.name != ep.name:
            raise RuntimeError(f"Entry point '{ep.name}' ({ep.value}) declares the model family '{obj.name}'; "
                               "the entry-point name must be the family's name")
        return obj
    if callable(obj):  # a bare add_*_config function: a family that extends nothing
        return ModelFamily(name=ep.name, add_config=obj)
    raise TypeError(f"Entry point '{ep.name}' ({ep.value}) in group '{ENTRY_POINT_GROUP}' is neither a "
                    f"ModelFamily nor a config function: {type(obj).__name__}")


def order_families(families: Sequence[ModelFamily]) -> List[ModelFamily]:
    """Sort families so that every family comes after the ones it extends (ties by name).

    Raises:
        RuntimeError: a family extends one that is not installed, or the ``extends`` relations
            form a cycle (the message names the families).
    """
    by_name: Dict[str, ModelFamily] = {}
    for fam in families:
        if fam.name in by_name:
            raise RuntimeError(f"Model family '{fam.name}' is declared twice under '{ENTRY_POINT_GROUP}'")
        by_name[fam.name] = fam
    for fam in families:
        missing = [d for d in fam.extends if d not in by_name]
        if missing:
            raise RuntimeError(f"Model family '{fam.name}' extends {missing}, which are not installed "
                               f"(installed: {sorted(by_name)})")
    ordered: List[ModelFamily] = []
    done: set = set()
    remaining = sorted(by_name)
    while remaining:
        ready = [n for n in remaining if all(d in done for d in by_name[n].extends)]
        if not ready:
            raise RuntimeError(f"Model families {remaining} extend each other in a cycle")
        for n in ready:
            ordered.append(by_name[n])
            done.add(n)
        remaining = [n for n in remaining if n not in done]
    return ordered


def get_model_families() -> List[ModelFamily]:
    """The installed families (entry points of :data:`ENTRY_POINT_GROUP`), loaded and in dependency order.

    Loading a family imports its package, which registers its components.

    Raises:
        RuntimeError / TypeError: see :func:`order_families` and the entry points' contract.
    """
    return order_families([_load(ep) for ep in entry_points(group=ENTRY_POINT_GROUP)])


def add_model_family_configs(cfg) -> List[str]:
    """Add the config keys of every installed model family to ``cfg`` (in place), in dependency order.

    Returns:
        The names of the families added, in the order applied.

    Raises:
        RuntimeError: no family is installed (the package was not installed with pip, so its
            entry points are missing), or the families' dependencies cannot be satisfied.
    """
    families = get_model_families()
    if not families:
        raise RuntimeError(
            f"No model family is registered under the entry-point group '{ENTRY_POINT_GROUP}'. "
            "Install the project (`pip install -e .` in the repository) so that mask_former and the "
            "other families are found.")
    for fam in families:
        fam.add_config(cfg)
        logging.getLogger(__name__).debug("Added config keys of model family %s", fam.name)
    return [fam.name for fam in families]
