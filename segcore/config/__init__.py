"""Configuration: ``get_cfg()`` defaults, ``CfgNode`` and ``@configurable``."""
from .config import CfgNode, ConfigError, load_yaml_with_base
from .configurable import configurable
from .families import add_model_family_configs

__all__ = ["CfgNode", "ConfigError", "add_model_family_configs", "configurable", "get_cfg", "load_yaml_with_base"]


def get_cfg() -> CfgNode:
    """A fresh copy of the default config (Detectron2 keys in use; see ``defaults.py``).

    Model families add their keys with e.g. ``mask_former.add_mask_former_config(cfg)``.
    """
    from .defaults import _C

    return _C.clone()
