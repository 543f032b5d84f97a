"""Configuration: ``get_cfg()`` defaults, ``CfgNode`` and ``@configurable``."""
from .config import CfgNode, ConfigError, add_config_defaults, load_yaml_with_base
from .configurable import configurable
from .families import ModelFamily, add_model_family_configs
from .unsupported import UNSUPPORTED_KEYS, check_unsupported_keys

__all__ = ["CfgNode", "ConfigError", "ModelFamily", "UNSUPPORTED_KEYS", "add_config_defaults",
           "add_model_family_configs", "check_unsupported_keys", "configurable", "get_cfg", "load_yaml_with_base"]


def get_cfg() -> CfgNode:
    """A fresh copy of the default config (Detectron2 keys in use; see ``defaults.py``).

    Model families add their keys with e.g. ``mask_former.add_mask_former_config(cfg)``, or all
    installed families at once with :func:`add_model_family_configs`.
    """
    from .defaults import _C

    return _C.clone()
