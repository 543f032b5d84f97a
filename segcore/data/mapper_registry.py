"""``DATASET_MAPPER_REGISTRY``: training dataset mappers by name (``INPUT.DATASET_MAPPER_NAME``).

Model families register their mappers here (MaskFormer: "mask_former_semantic", ...), so the
trainer picks one from the config without knowing the family.
"""
from __future__ import annotations

from typing import Any, Callable

from segcore.utils.registry import NamedRegistry

__all__ = ["DATASET_MAPPER_REGISTRY", "build_dataset_mapper"]

DATASET_MAPPER_REGISTRY = NamedRegistry("DATASET_MAPPER")
DATASET_MAPPER_REGISTRY.__doc__ = """
Registry for dataset mappers: callables ``mapper(dataset_dict) -> dict`` that read the files
named in a Detectron2-format dataset dict and return the model's input (``"image"`` uint8
(C, H, W), ``"sem_seg"``, ``"instances"``, ...).

A registered object is called as ``obj(cfg, is_train)`` (a ``@configurable`` class). Register
with ``@DATASET_MAPPER_REGISTRY.register("name")``; the name is the config value.
"""


def build_dataset_mapper(cfg, is_train: bool = True) -> Callable[[dict], Any]:
    """Build the mapper named by ``cfg.INPUT.DATASET_MAPPER_NAME`` ("" is the engine's
    :class:`~segcore.data.DatasetMapper`, as Detectron2's default).

    Args:
        cfg: a config with ``INPUT.DATASET_MAPPER_NAME``.
        is_train: passed to the mapper.

    Raises:
        KeyError: the name is not registered (the message lists the registered names and says
            that importing a model family, e.g. ``import mask_former``, registers its mappers).
    """
    name = cfg.INPUT.DATASET_MAPPER_NAME
    if not name:
        from .dataset_mapper import DatasetMapper

        return DatasetMapper(cfg, is_train)
    if name not in DATASET_MAPPER_REGISTRY:
        registered = DATASET_MAPPER_REGISTRY.names()
        raise KeyError(
            f"INPUT.DATASET_MAPPER_NAME '{name}' is not a registered dataset mapper. Registered: {registered}. "
            "Model families register their mappers when imported (e.g. `import mask_former`)."
        )
    return DATASET_MAPPER_REGISTRY.get(name)(cfg, is_train)
