"""The original MaskFormer release's resolved config values, and their comparison with ours.

The values are stored in ``tests/fixtures/maskformer_original_configs.json`` (see
``tests/fixtures/README.md``): the original's default config once (``defaults``) and, per
original config file, the keys whose value differs from it (``configs``), so that the released
value of key K for file F is ``configs[F].get(K, defaults[K])``. ``accepted_differences`` names
the (key, files) whose released value comes from Detectron2's defaults and is known to differ
here, with the reason; those pairs are not compared.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Dict, List

from tests.paths import FIXTURES

RELEASE_FIXTURE = os.path.join(FIXTURES, "maskformer_original_configs.json")


@functools.lru_cache(maxsize=None)
def load_release() -> dict:
    """The fixture as a dict (read once)."""
    with open(RELEASE_FIXTURE, encoding="utf-8") as f:
        return json.load(f)


def released_configs() -> List[str]:
    """The original config files, '/'-separated paths relative to the config folder."""
    return sorted(load_release()["configs"])


def released_values(rel_path: str) -> Dict[str, Any]:
    """``{dotted key: released value}`` of one original config file, less its accepted differences.

    Raises:
        KeyError: ``rel_path`` is not an original config file.
    """
    release = load_release()
    values = {**release["defaults"], **release["configs"][rel_path]}
    for key, accepted in release["accepted_differences"].items():
        if rel_path in accepted["configs"]:
            values.pop(key, None)
    return values


def flatten_cfg(cfg, prefix: str = "") -> Dict[str, Any]:
    """A config as ``{dotted key: value}``, tuples turned into lists (as JSON stores them)."""
    out: Dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            out.update(flatten_cfg(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def same_value(a: Any, b: Any) -> bool:
    """Config-value equality: lists element by element, numbers by value (2 == 2.0), but a bool
    only equals a bool (``True == 1`` is not accepted)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def differences_from_release(rel_path: str, cfg) -> List[str]:
    """One line per key whose value in ``cfg`` (our resolved config) is not the released value of
    ``rel_path``, or that ``cfg`` lacks."""
    ours = flatten_cfg(cfg)
    lines = []
    for key, released in sorted(released_values(rel_path).items()):
        if key not in ours:
            lines.append(f"{key}: released {released!r}, missing here")
        elif not same_value(released, ours[key]):
            lines.append(f"{key}: released {released!r}, here {ours[key]!r}")
    return lines
