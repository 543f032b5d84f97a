"""Writing config overrides as a YAML config file that inherits one of ours (``_BASE_``), in the
style of this project's config files: nested block mappings, lists in flow style."""
from __future__ import annotations

import os
from typing import Dict

import yaml

__all__ = ["REPOSITORY_ROOT", "write_config_yaml"]

#: the checkout this package runs from (an editable install): its ``configs/`` are the base configs,
#: and a YAML written inside it names its ``_BASE_`` by a relative path
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _nested(overrides: Dict[str, object]) -> dict:
    """``{"A.B.C": v}`` -> ``{"A": {"B": {"C": v}}}``, in the order of the keys."""
    tree: dict = {}
    for key, value in overrides.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


class _ConfigDumper(yaml.SafeDumper):
    """Block-style mappings, flow-style lists (as our config files are written)."""


_ConfigDumper.add_representer(list, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))


def write_config_yaml(overrides: Dict[str, object], path: str, *, base_config: str, header: str = "",
                      root: str = REPOSITORY_ROOT) -> None:
    """Write ``overrides`` as a YAML config inheriting ``base_config``.

    Args:
        overrides: {dotted full key: value} (plain YAML values: numbers, strings, booleans, None, lists).
        path: the YAML file to write.
        base_config: the config to inherit; ``_BASE_`` is its path relative to the YAML's folder
            when the YAML is inside ``root``, else its absolute path.
        header: a comment line written first (without ``#``), e.g. what wrote the file.
        root: the repository whose files refer to each other by relative paths.
    """
    base = os.path.abspath(base_config)
    folder = os.path.dirname(os.path.abspath(path))
    inside = os.path.commonpath([folder, os.path.abspath(root)]) == os.path.abspath(root)
    body = yaml.dump({"_BASE_": os.path.relpath(base, folder) if inside else base, **_nested(overrides)},
                     Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False)
    with open(path, "w") as f:
        f.write((f"# {header}\n" if header else "") + body)
