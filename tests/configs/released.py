"""The original releases' resolved config values, and their comparison with ours.

One fixture per original repository, written by ``tools/dev/compare_configs_with_original.py
--write-fixture`` (see ``tests/fixtures/README.md``):

- ``maskformer_original_configs.json``: facebookresearch/MaskFormer (:data:`MASKFORMER_FIXTURE`,
  the default of every function here);
- ``mask2former_original_configs.json``: facebookresearch/Mask2Former (:data:`MASK2FORMER_FIXTURE`);
- ``semask_maskformer_original_configs.json``, ``semask_mask2former_original_configs.json``: the
  SeMask configs of Picsart-AI-Research/SeMask-Segmentation's SeMask-MaskFormer and
  SeMask-Mask2Former (:data:`SEMASK_MASKFORMER_FIXTURE`, :data:`SEMASK_MASK2FORMER_FIXTURE`), whose
  ``folders`` (the ``semask_swin/`` folders) lie inside MaskFormer's and Mask2Former's top-level ones;
- ``mask2former_video_original_configs.json``: Mask2Former's video configs (``youtubevis_2019/``,
  ``youtubevis_2021/``; :data:`MASK2FORMER_VIDEO_FIXTURE`).

Each stores the original's default config once (``defaults``) and, per original config file, the
keys whose value differs from it (``configs``), so that the released value of key K for file F is
``configs[F].get(K, defaults[K])``. ``accepted_differences`` names the (key, files) whose released
value comes from Detectron2's defaults and is known to differ here, with the reason; those pairs
are not compared. A relative config path belongs to at most one fixture (:func:`fixture_of`).
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Dict, List, Optional

from tests.paths import CONFIGS, FIXTURES

MASKFORMER_FIXTURE = os.path.join(FIXTURES, "maskformer_original_configs.json")
MASK2FORMER_FIXTURE = os.path.join(FIXTURES, "mask2former_original_configs.json")
SEMASK_MASKFORMER_FIXTURE = os.path.join(FIXTURES, "semask_maskformer_original_configs.json")
SEMASK_MASK2FORMER_FIXTURE = os.path.join(FIXTURES, "semask_mask2former_original_configs.json")
MASK2FORMER_VIDEO_FIXTURE = os.path.join(FIXTURES, "mask2former_video_original_configs.json")
#: Every release fixture, one per original project (Mask2Former's video configs, read by its
#: train_net_video.py with one more config function, have their own).
RELEASE_FIXTURES = (MASKFORMER_FIXTURE, MASK2FORMER_FIXTURE, SEMASK_MASKFORMER_FIXTURE, SEMASK_MASK2FORMER_FIXTURE,
                    MASK2FORMER_VIDEO_FIXTURE)
#: Folders inside the releases' folders that hold the configs of an original with no fixture here:
#: SeMask-FPN's (mmsegmentation python configs, checked by tests/semask/test_semask_fpn_configs.py).
OTHER_RELEASE_FOLDERS = ("ade20k-150/semask_fpn", "cityscapes-19/semask_fpn")
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


def release_folders(fixture: str = RELEASE_FIXTURE) -> List[str]:
    """The folders (relative to the config folder) that hold the release's configs: the fixture's
    ``folders`` when it names them (SeMask's ``semask_swin/`` folders), else the top-level folders
    of its files."""
    release = load_release(fixture)
    if release.get("folders"):
        return sorted(release["folders"])
    return sorted({rel.split("/")[0] for rel in release["configs"]})


def our_configs_in_release_folders(fixture: str = RELEASE_FIXTURE, configs_root: str = CONFIGS) -> List[str]:
    """Our ``.yaml`` files under :func:`release_folders` ('/'-separated, sorted), less those under
    another release's folders inside them (e.g. SeMask's ``ade20k-150/semask_swin/`` inside
    MaskFormer's ``ade20k-150/``), so ``quickstart/`` and the other families' files are left out."""
    folders = release_folders(fixture)
    others = [d for other in RELEASE_FIXTURES if other != fixture for d in release_folders(other)]
    nested = [d for d in [*others, *OTHER_RELEASE_FOLDERS] if any(d.startswith(f + "/") for f in folders)]

    def under(rel: str, dirs: List[str]) -> bool:
        return any(rel.startswith(d + "/") for d in dirs)

    found = []
    for dirpath, _dirs, files in os.walk(configs_root):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), configs_root).replace(os.sep, "/")
            if f.endswith(".yaml") and under(rel, folders) and not under(rel, nested):
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
