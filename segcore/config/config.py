"""The configuration object: fvcore's CfgNode with Detectron2's file semantics.

Adds to fvcore's ``CfgNode``:

* ``_BASE_`` inheritance (a path relative to the file that names it), resolved recursively;
* the ``!!python/object/apply:eval ["<expr>"]`` tag used by the original configs
  (e.g. ``MIN_SIZE_TRAIN: !!python/object/apply:eval ["[int(x * 0.1 * 512) for x in range(5, 21)]"]``),
  evaluated by a small arithmetic interpreter rather than ``eval`` (see :mod:`.safe_eval`), so a
  config file can never run code;
* errors that name the offending key and the file it came from.
"""
from __future__ import annotations

import logging
import os
from typing import Any, List, Mapping

import yaml
from fvcore.common.config import CfgNode as _FvCfgNode

from .safe_eval import safe_eval_expression

__all__ = ["CfgNode", "ConfigError", "add_config_defaults", "load_yaml_with_base"]

BASE_KEY = "_BASE_"
_EVAL_TAG = "tag:yaml.org,2002:python/object/apply:eval"


class ConfigError(KeyError):
    """An invalid config: unknown key, wrong type, or an unreadable / malformed file."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader plus the original configs' ``!!python/object/apply:eval`` tag and tuples."""


def _construct_eval(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    args = loader.construct_sequence(node)
    if len(args) != 1 or not isinstance(args[0], str):
        raise yaml.constructor.ConstructorError(
            None, None, "!!python/object/apply:eval takes one string expression", node.start_mark
        )
    return safe_eval_expression(args[0])


def _construct_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    return tuple(loader.construct_sequence(node))


_ConfigLoader.add_constructor(_EVAL_TAG, _construct_eval)
_ConfigLoader.add_constructor("tag:yaml.org,2002:python/tuple", _construct_tuple)


def _read_yaml(filename: str) -> dict:
    from segcore.utils.file_io import PathManager

    if not PathManager.exists(filename):
        raise ConfigError(f"Config file not found: {filename}")
    with PathManager.open(filename, "r") as f:
        try:
            cfg = yaml.load(f, Loader=_ConfigLoader)
        except (yaml.YAMLError, ValueError) as e:
            raise ConfigError(f"Cannot parse config file {filename}: {e}") from e
    if cfg is None:
        return {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"Config file {filename} must contain a mapping at top level, got {type(cfg).__name__}")
    return cfg


def _merge_dicts(a: dict, b: dict) -> None:
    """Merge ``a`` into ``b`` recursively (``a`` wins)."""
    for k, v in a.items():
        if isinstance(v, dict) and isinstance(b.get(k), dict):
            _merge_dicts(v, b[k])
        else:
            b[k] = v


def load_yaml_with_base(filename: str, allow_unsafe: bool = False, *, _chain: tuple = ()) -> dict:
    """Read a YAML config and the chain of ``_BASE_`` files it inherits from.

    Args:
        filename: path (local or any iopath URI) of the YAML file.
        allow_unsafe: accepted for Detectron2 API compatibility and ignored: the loader is
            always safe, and the one non-standard tag the original configs use is supported.

    Returns:
        A plain dict: the base files' content overridden by this file's.

    Raises:
        ConfigError: the file (or a base) is missing, not YAML, or not a mapping, or the
            ``_BASE_`` chain comes back to a file already in it (the message shows the cycle).
    """
    key = os.path.normpath(os.path.abspath(filename)) if "://" not in filename else filename
    if key in _chain:
        cycle = " -> ".join([*_chain[_chain.index(key):], key])
        raise ConfigError(f"{BASE_KEY} files form a cycle: {cycle}")
    cfg = _read_yaml(filename)
    base = cfg.pop(BASE_KEY, None)
    if base is None:
        return cfg
    if not isinstance(base, str):
        raise ConfigError(f"{BASE_KEY} in {filename} must be a string path, got {base!r}")
    base = os.path.expanduser(base)
    if not any(map(base.startswith, ["/", "https://", "http://", "detectron2://"])):
        base = os.path.join(os.path.dirname(filename), base)
    base_cfg = load_yaml_with_base(base, _chain=(*_chain, key))
    _merge_dicts(cfg, base_cfg)
    return base_cfg


class CfgNode(_FvCfgNode):
    """A config node (Detectron2 / fvcore ``CfgNode``) whose errors name the key and the file.

    Keys are attribute-accessible (``cfg.MODEL.WEIGHTS``). Only keys present in the defaults
    (``segcore.config.get_cfg()`` plus the ``add_*_config`` of the model families) may be set;
    anything else raises :class:`ConfigError` naming the full key.
    """

    @classmethod
    def load_yaml_with_base(cls, filename: str, allow_unsafe: bool = False) -> dict:
        return load_yaml_with_base(filename, allow_unsafe)

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = True) -> None:
        """Merge a YAML file (with its ``_BASE_`` chain) into this config.

        Raises:
            ConfigError: missing or malformed file, or a key that the defaults do not have
                (the message gives the key and the file).
        """
        loaded = load_yaml_with_base(cfg_filename)
        loaded_cfg = type(self)(loaded)
        try:
            self.merge_from_other_cfg(loaded_cfg)
        except (KeyError, ValueError, TypeError) as e:
            msg = e.args[0] if e.args else str(e)
            raise ConfigError(f"{msg} (in config file {cfg_filename})") from e

    def merge_from_other_cfg(self, cfg_other: "_FvCfgNode") -> None:
        try:
            super().merge_from_other_cfg(cfg_other)
        except KeyError as e:
            raise ConfigError(_describe_key_error(e)) from e

    def merge_from_list(self, cfg_list: list) -> None:
        """Merge ``[KEY, VALUE, KEY, VALUE, ...]`` overrides (values are YAML/Python literals).

        Raises:
            ConfigError: an odd-length list or a key that does not exist.
        """
        if len(cfg_list) % 2 != 0:
            raise ConfigError(f"Override list must be KEY VALUE pairs; got an odd number of items: {cfg_list}")
        try:
            super().merge_from_list(list(cfg_list))
        except KeyError as e:
            raise ConfigError(_describe_key_error(e) + " (in command-line overrides)") from e
        except AssertionError as e:
            raise ConfigError(f"Invalid override: {e}") from e

    def __setattr__(self, name: str, val: Any) -> None:
        if name.startswith("COMPUTED_"):
            if name in self:
                old = self[name]
                if old != val:
                    raise KeyError(f"Computed attribute '{name}' already exists with a different value {old} != {val}")
                return
            self[name] = val
        else:
            super().__setattr__(name, val)

    def dump(self, *args, **kwargs) -> str:
        """The config as a YAML string that :meth:`merge_from_file` reads back."""
        return super().dump(*args, **kwargs)


def add_config_defaults(cfg: CfgNode, defaults: Mapping[str, Any]) -> List[str]:
    """Add the keys of ``defaults`` that ``cfg`` does not have yet (in place); keep the others.

    This is how model families add their keys (``add_mask_former_config`` and the others): a
    family never replaces a key or a default that the engine or another family set, so calling
    family functions repeatedly, or in another order, gives the same config.

    Args:
        cfg: the config to extend (not frozen).
        defaults: ``{"MODEL.MASK_FORMER.NHEADS": 8, ...}``: dotted full key -> default value.
            Intermediate nodes are created as needed; a ``dict`` value becomes a node.

    Returns:
        The full keys that were added (the ones already present are not listed).

    Raises:
        ConfigError: a key's path runs through an existing non-node value, or a node value
            would replace an existing leaf (the message names the key).
    """
    added: List[str] = []
    for full_key, value in defaults.items():
        *parents, leaf = full_key.split(".")
        node = cfg
        for i, part in enumerate(parents):
            if part not in node:
                node[part] = type(cfg)()
            node = node[part]
            if not isinstance(node, _FvCfgNode):
                raise ConfigError(f"Cannot add '{full_key}': '{'.'.join(parents[: i + 1])}' is a value, not a node")
        if leaf in node:
            if isinstance(value, dict) != isinstance(node[leaf], _FvCfgNode):
                raise ConfigError(f"Cannot add '{full_key}': it exists with another structure ({node[leaf]!r})")
            if isinstance(value, dict):
                added += [f"{full_key}.{k}" for k in add_config_defaults(node[leaf], value)]
            continue
        node[leaf] = type(cfg)(value) if isinstance(value, dict) else value
        added.append(full_key)
    return added


def _describe_key_error(e: KeyError) -> str:
    msg = e.args[0] if e.args else str(e)
    if isinstance(msg, str) and msg.startswith("Non-existent config key"):
        key = msg.split(":", 1)[1].strip()
        return f"Unknown config key '{key}': it is not in the defaults (misspelled, or the model family that defines it was not added)"
    return str(msg)


logging.getLogger(__name__)
