"""The original releases' resolved config values, and their comparison with ours.

One fixture per original repository, written by ``tools/dev/compare_configs_with_original.py
--write-fixture`` (see ``tests/fixtures/README.md``):

- ``maskformer_original_configs.json``: facebookresearch/MaskFormer (:data:`MASKFORMER_FIXTURE`,
  the default of every function here);
- ``mask2former_original_configs.json``: facebookresearch/Mask2Former (:data:`MASK2FORMER_FIXTURE`).

Each stores the original's default config once (``defaults``) and, per original config file, the
keys whose value differs from it (``configs``), so that the released value of key K for file F is
``configs[F].get(K, defaults[K])``. ``accepted_differences`` names the (key, files) whose released
value comes from Detectron2's defaults and is known to differ here, with the reason; those pairs
are not compared. The families' config folders do not overlap, so a relative config path belongs
to at most one fixture (:func:`fixture_of`).
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Dict, List, Optional

from tests.paths import CONFIGS, FIXTURES

MASKFORMER_FIXTURE = os.path.join(FIXTURES, "maskformer_original_configs.json")
MASK2FORMER_FIXTURE = os.path.join(FIXTURES, "mask2former_original_configs.json")
#: Every release fixture, one per original repository.
RELEASE_FIXTURES = (MASKFORMER_FIXTURE, MASK2FORMER_FIXTURE)
#: The default fixture of the functions below (MaskFormer's, which they were first written for).
RELEASE_FIXTURE = MASKFORMER_FIXTURE


@functools.lru_cache(maxsize=None)
def load_release(fixture: str = RELEASE_FIXTURE) -> dict:
    """The fixture as a dict (read once per path)."""
    with open(fixture, encoding="utf-8") as f:
        return json.load(f)


def released_configs(fixture: str = RELEASE_FIXTURE) -> List[str]:
    """The original config files, '/'-separated paths relative to the config folder."""
    return sorted(load_release(fixture)["configs"])


def released_values(rel_path: str, fixture: str = RELEASE_FIXTURE) -> Dict[str, Any]:
    """``{dotted key: released value}`` of one original config file, less its accepted differences.

    Raises:
        KeyError: ``rel_path`` is not an original config file of ``fixture``.
    """
    release = load_release(fixture)
    values = {**release["defaults"], **release["configs"][rel_path]}
    for key, accepted in release["accepted_differences"].items():
        if rel_path in accepted["configs"]:
            values.pop(key, None)
    return values


def fixture_of(rel_path: str) -> Optional[str]:
    """The fixture of :data:`RELEASE_FIXTURES` that holds ``rel_path`` ('/'-separated), or None
    when no original release has that file."""
    for fixture in RELEASE_FIXTURES:
        if rel_path in load_release(fixture)["configs"]:
            return fixture
    return None


def our_configs_in_release_folders(fixture: str = RELEASE_FIXTURE, configs_root: str = CONFIGS) -> List[str]:
    """Our ``.yaml`` files under the top-level folders that the release's config files are in
    ('/'-separated, sorted), so ``quickstart/`` and the other families' folders are left out."""
    folders = {rel.split("/")[0] for rel in released_configs(fixture)}
    found = []
    for dirpath, _dirs, files in os.walk(configs_root):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), configs_root).replace(os.sep, "/")
            if f.endswith(".yaml") and rel.split("/")[0] in folders:
                found.append(rel)
    return sorted(found)


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


def differences_from_release(rel_path: str, cfg, fixture: str = RELEASE_FIXTURE) -> List[str]:
    """One line per key whose value in ``cfg`` (our resolved config) is not the released value of
    ``rel_path`` (in ``fixture``), or that ``cfg`` lacks."""
    ours = flatten_cfg(cfg)
    lines = []
    for key, released in sorted(released_values(rel_path, fixture).items()):
        if key not in ours:
            lines.append(f"{key}: released {released!r}, missing here")
        elif not same_value(released, ours[key]):
            lines.append(f"{key}: released {released!r}, here {ours[key]!r}")
    return lines
