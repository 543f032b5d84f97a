"""``NamedRegistry``: fvcore's Registry, plus registration under an explicit name."""
from __future__ import annotations

from typing import Any, List

from fvcore.common.registry import Registry

__all__ = ["NamedRegistry", "get_registered"]


class NamedRegistry(Registry):
    """An fvcore ``Registry`` whose ``register`` also takes an explicit name.

    ``@REG.register()`` / ``REG.register(obj)`` register under the object's ``__name__`` (as fvcore
    does); ``@REG.register("short_name")`` registers under ``short_name``, for registries keyed by
    config values that are not class names (``INPUT.DATASET_MAPPER_NAME: mask_former_semantic``,
    a dataset's ``evaluator_type: sem_seg``).

    Raises (on registration):
        AssertionError: the name is already registered (fvcore's behaviour).
    """

    def register(self, obj: Any = None) -> Any:
        if isinstance(obj, str):
            name = obj

            def deco(func_or_class: Any) -> Any:
                self._do_register(name, func_or_class)
                return func_or_class

            return deco
        return super().register(obj)

    def names(self) -> List[str]:
        """The registered names, sorted."""
        return sorted(name for name, _ in self)


def get_registered(registry: Registry, name: str, config_key: str) -> Any:
    """``registry.get(name)``, with an error that names the config key and what is registered.

    Args:
        registry: an fvcore ``Registry``.
        name: the registered name (a config value).
        config_key: the config key the name came from, for the message (e.g. ``"MODEL.BACKBONE.NAME"``).

    Raises:
        KeyError: ``name`` is not registered; the message lists the registered names and says that
            importing the model family that defines it registers it.
    """
    if name not in registry:
        names = sorted(k for k, _ in registry)
        raise KeyError(f"{config_key} = '{name}' is not registered in {registry._name}; registered: {names}. "
                       "Import the model family that defines it (e.g. `import mask_former`).")
    return registry.get(name)
