#!/usr/bin/env python
"""Compare this repository's configs with an original repository's, key by key.

For maintainers; neither the package nor the tests import it. Each config file of the original
repository is resolved the way the original ``train_net.py`` resolves it (Detectron2's
``get_cfg()``, then the original project's ``add_*_config`` functions, then the file with its
``_BASE_`` chain), and the file of the same relative path here is resolved the way ours is
(our defaults + the installed model families + the file, as :func:`segcore.engine.setup_cfg`
does, without its fallback of ``MODEL.DEVICE`` to "cpu", which depends on the machine). Every key
present in both resolved trees whose values differ is printed, as are the files that exist on
one side only, the keys an original file sets that our defaults do not have, and the original
files that our resolution refuses (an original file must run here unchanged; e.g. a key that
nothing reads here set to another value than its default, see
:func:`segcore.config.check_unsupported_keys`). Differences that come from the defaults alone and
are listed in :data:`ACCEPTED_DEFAULT_DIFFERENCES` are printed as accepted and do not count.

Examples::

    python tools/dev/compare_configs_with_original.py --original-root /tmp/orig/MaskFormer
    python tools/dev/compare_configs_with_original.py --original-root /tmp/orig/MaskFormer \\
        --detectron2-root /tmp/orig/detectron2 --family mask_former \\
        --write-fixture tests/fixtures/maskformer_original_configs.json --original-revision da3e60d
    python tools/dev/compare_configs_with_original.py --family mask2former \\
        --original-root /tmp/orig/Mask2Former --detectron2-root /tmp/orig/detectron2
    python tools/dev/compare_configs_with_original.py --family semask_mask2former \\
        --original-root /tmp/orig/SeMask-Segmentation --detectron2-root /tmp/orig/detectron2

The exit status is 0 when nothing differs, 1 when anything differs and 2 for a usage error (a
missing checkout, an unknown family).

The original side needs no Detectron2 installation: ``detectron2/config/defaults.py``,
``projects/DeepLab/deeplab/config.py`` and the family's config module are loaded from the given
checkouts by file path, with a stand-in for ``detectron2.config.CfgNode`` (fvcore's ``CfgNode`` with
Detectron2's ``merge_from_file``). The original YAML files are read the way Detectron2 reads them,
with PyYAML's unsafe loader (their ``!!python/object/apply:eval`` tags run ``eval``): only point
the tool at checkouts you trust.

Adding a family: add a :class:`Family` to :data:`FAMILIES` naming its config module and its
``add_*_config`` functions in the order the original ``train_net.py`` calls them, and the
top-level config folders that another ``train_net`` reads (left out on both sides). Each family's
configs live here under the same relative paths as in its original repository (MaskFormer's under
``ade20k-150/``, ``coco-panoptic/``, ...; Mask2Former's under ``ade20k/``, ``coco/``,
``cityscapes/`` and ``mapillary-vistas/``), so the families' folders do not overlap.

SeMask (Picsart-AI-Research/SeMask-Segmentation) is one repository holding modified copies of
MaskFormer and Mask2Former (``SeMask-MaskFormer/``, ``SeMask-Mask2Former/``), each with its own
``train_net.py`` and config functions, and copies of those projects' configs. Its two families,
``semask_maskformer`` and ``semask_mask2former``, take the SeMask-Segmentation checkout as
``--original-root`` and compare only the folders SeMask adds (``included_folders``: the
``semask_swin/`` folders); the copied MaskFormer / Mask2Former configs are those families' business.
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import logging
import math
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple
from unittest import mock

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

DEFAULT_CONFIGS_ROOT = os.path.join(_REPO_ROOT, "configs")

# Keys stored in a fixture (``--write-fixture``): a dotted key is kept when it equals one of
# these or starts with one of them followed by a dot. Together they decide the architecture,
# the weights, the inference thresholds, the data pipeline and the schedule.
FIXTURE_KEY_PREFIXES = (
    "MODEL.META_ARCHITECTURE", "MODEL.BACKBONE", "MODEL.RESNETS", "MODEL.SWIN", "MODEL.SEM_SEG_HEAD",
    "MODEL.MASK_FORMER", "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD", "MODEL.WEIGHTS", "INPUT", "DATASETS",
    "DATALOADER", "SOLVER", "TEST",
)

# Keys whose original value comes from Detectron2's defaults and legitimately differs from ours:
# {key: (the original's default value, why)}. Such a difference is accepted only where the original
# file chain does not set the key itself.
ACCEPTED_DEFAULT_DIFFERENCES: Dict[str, Tuple[Any, str]] = {
    "MODEL.META_ARCHITECTURE": (
        "GeneralizedRCNN",
        "Detectron2's default meta-architecture, which segcore does not have (our default is SemanticSegmentor); "
        "only Base-*.yaml files, which name no model, keep the default"),
}


class ComparisonError(RuntimeError):
    """A checkout is missing or does not look as expected (the message says what and where)."""


@dataclass(frozen=True)
class ConfigFunction:
    """One ``add_*_config(cfg)`` function of an original repository.

    Attributes:
        checkout: "detectron2" (the Detectron2 checkout) or "original" (the family's checkout).
        path: the module's path inside that checkout.
        function: the function's name in the module.
    """

    checkout: str
    path: str
    function: str


@dataclass(frozen=True)
class Family:
    """How an original repository builds its configs.

    Attributes:
        name: the ``--family`` value.
        repository: the original's GitHub name (recorded in fixtures).
        config_functions: the ``add_*_config`` functions its ``train_net.py`` calls on Detectron2's
            ``get_cfg()``, in call order.
        configs_dir: the config folder inside the original checkout; the same relative paths are
            looked up under ours.
        excluded_folders: top-level folders of ``configs_dir`` that are not compared (configs
            that another ``train_net`` of the original reads with other config functions, e.g.
            Mask2Former's video configs).
        included_folders: when not empty, the only folders (paths relative to ``configs_dir``)
            whose configs are compared, on both sides (SeMask's ``semask_swin/`` folders).
    """

    name: str
    repository: str
    config_functions: Tuple[ConfigFunction, ...]
    configs_dir: str = "configs"
    excluded_folders: Tuple[str, ...] = ()
    included_folders: Tuple[str, ...] = ()

    def compares(self, rel_path: str) -> bool:
        """Whether the config at ``rel_path`` (relative to the config folder, '/'-separated) is compared."""
        if rel_path.split("/")[0] in self.excluded_folders:
            return False
        return not self.included_folders or any(rel_path.startswith(f + "/") for f in self.included_folders)


_DEEPLAB = ConfigFunction("detectron2", "projects/DeepLab/deeplab/config.py", "add_deeplab_config")

FAMILIES: Dict[str, Family] = {
    "mask_former": Family(
        name="mask_former",
        repository="facebookresearch/MaskFormer",
        config_functions=(_DEEPLAB, ConfigFunction("original", "mask_former/config.py", "add_mask_former_config")),
    ),
    # Mask2Former's train_net.py: get_cfg(), add_deeplab_config, add_maskformer2_config. Its
    # youtubevis_* configs belong to train_net_video.py (the "mask2former_video" family below).
    "mask2former": Family(
        name="mask2former",
        repository="facebookresearch/Mask2Former",
        config_functions=(_DEEPLAB, ConfigFunction("original", "mask2former/config.py", "add_maskformer2_config")),
        excluded_folders=("youtubevis_2019", "youtubevis_2021"),
    ),
    # Mask2Former's train_net_video.py: get_cfg(), add_deeplab_config, add_maskformer2_config,
    # add_maskformer2_video_config; its configs are the youtubevis_* folders.
    "mask2former_video": Family(
        name="mask2former_video",
        repository="facebookresearch/Mask2Former",
        config_functions=(_DEEPLAB, ConfigFunction("original", "mask2former/config.py", "add_maskformer2_config"),
                          ConfigFunction("original", "mask2former_video/config.py", "add_maskformer2_video_config")),
        included_folders=("youtubevis_2019", "youtubevis_2021"),
    ),
    # SeMask-Segmentation/SeMask-MaskFormer's train_net.py: get_cfg(), add_deeplab_config, its
    # add_mask_former_config (MaskFormer's plus CATE_WEIGHT, SEM_WINDOW_SIZE, NUM_SEM_BLOCKS).
    "semask_maskformer": Family(
        name="semask_maskformer",
        repository="Picsart-AI-Research/SeMask-Segmentation",
        config_functions=(_DEEPLAB, ConfigFunction("original", "SeMask-MaskFormer/mask_former/config.py",
                                                   "add_mask_former_config")),
        configs_dir="SeMask-MaskFormer/configs",
        included_folders=("ade20k-150/semask_swin",),
    ),
    # SeMask-Segmentation/SeMask-Mask2Former's train_net.py: get_cfg(), add_deeplab_config, its
    # add_maskformer2_config (Mask2Former's plus the same three keys).
    "semask_mask2former": Family(
        name="semask_mask2former",
        repository="Picsart-AI-Research/SeMask-Segmentation",
        config_functions=(_DEEPLAB, ConfigFunction("original", "SeMask-Mask2Former/mask2former/config.py",
                                                   "add_maskformer2_config")),
        configs_dir="SeMask-Mask2Former/configs",
        included_folders=("ade20k/semantic-segmentation/semask_swin", "cityscapes/semantic-segmentation/semask_swin"),
    ),
}


# ---------------------------------------------------------------------------------------------
# Resolving the original configs
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _detectron2_cfgnode_class() -> type:
    """A stand-in for ``detectron2.config.CfgNode``: fvcore's ``CfgNode`` with Detectron2's
    ``merge_from_file`` (unsafe YAML loading by default; a file of another ``VERSION`` than the
    defaults' is refused, as Detectron2 would convert it)."""
    from fvcore.common.config import CfgNode as FvCfgNode

    class Detectron2CfgNode(FvCfgNode):
        def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = True) -> None:
            if not os.path.isfile(cfg_filename):
                raise ComparisonError(f"Config file not found: {cfg_filename}")
            loaded = type(self)(self.load_yaml_with_base(cfg_filename, allow_unsafe=allow_unsafe))
            version = loaded.get("VERSION", self.get("VERSION"))
            if version != self.get("VERSION"):
                raise ComparisonError(
                    f"{cfg_filename} is a version-{version} config; Detectron2 would upgrade it to version "
                    f"{self.get('VERSION')}, which this tool does not reproduce")
            self.merge_from_other_cfg(loaded)

    return Detectron2CfgNode


def _load_module(name: str, path: str, stubs: Dict[str, types.ModuleType]) -> types.ModuleType:
    """Execute the Python file ``path`` as module ``name`` while ``stubs`` stand in
    ``sys.modules``; ``sys.modules`` is restored afterwards."""
    if not os.path.isfile(path):
        raise ComparisonError(f"Expected the file {path}: is the checkout root right?")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(sys.modules, {**stubs, name: module}):
        try:
            spec.loader.exec_module(module)
        except ImportError as e:
            raise ComparisonError(
                f"{path} imports something this tool has no stand-in for ({e}); add one in "
                "_original_default_config()") from e
    return module


def _original_default_config(family: Family, original_root: str, detectron2_root: str) -> Callable[[], Any]:
    """A function returning a fresh copy of the original's default config (Detectron2's defaults
    plus the family's ``add_*_config`` functions, called in order).

    Raises:
        ComparisonError: a module or function is missing from the checkouts.
    """
    cfgnode = _detectron2_cfgnode_class()
    # ``detectron2/config/defaults.py`` does ``from .config import CfgNode as CN``; the family
    # modules do ``from detectron2.config import CfgNode as CN``.
    package = types.ModuleType("_original_detectron2_config")
    package.__path__ = []
    config_module = types.ModuleType("_original_detectron2_config.config")
    config_module.CfgNode = cfgnode
    d2 = types.ModuleType("detectron2")
    d2.__path__ = []
    d2_config = types.ModuleType("detectron2.config")
    d2_config.CfgNode = cfgnode
    d2.config = d2_config
    stubs = {"_original_detectron2_config": package, "_original_detectron2_config.config": config_module,
             "detectron2": d2, "detectron2.config": d2_config}

    defaults = _load_module("_original_detectron2_config.defaults",
                            os.path.join(detectron2_root, "detectron2", "config", "defaults.py"), stubs)
    if not isinstance(getattr(defaults, "_C", None), cfgnode):
        raise ComparisonError(f"{defaults.__file__} defines no default config _C")
    roots = {"detectron2": detectron2_root, "original": original_root}
    add_functions = []
    for i, fn in enumerate(family.config_functions):
        module = _load_module(f"_original_config_module_{i}", os.path.join(roots[fn.checkout], fn.path), stubs)
        if not callable(getattr(module, fn.function, None)):
            raise ComparisonError(f"{module.__file__} has no function {fn.function}")
        add_functions.append(getattr(module, fn.function))
    base = defaults._C.clone()
    for add in add_functions:
        add(base)

    return base.clone


def _load_original_yaml(path: str) -> dict:
    """The original file with its ``_BASE_`` chain merged, as plain nested dicts (what it sets)."""
    cfgnode = _detectron2_cfgnode_class()
    return cfgnode.load_yaml_with_base(path, allow_unsafe=True)


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------
def flatten(tree: Any, prefix: str = "") -> Dict[str, Any]:
    """Flatten a nested mapping (a ``CfgNode`` or dict) into ``{"A.B.C": leaf value}``.

    Tuples become lists, recursively, so that YAML lists and Python tuples compare equal and
    the values can be written as JSON.
    """
    out: Dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def values_equal(a: Any, b: Any) -> bool:
    """Config-value equality: numbers compare by value (2 == 2.0) but a bool only equals a bool,
    lists compare element by element, NaN never equals anything."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return not (isinstance(a, float) and math.isnan(a)) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@dataclass
class FileReport:
    """What differs for one relative config path.

    Attributes:
        rel_path: path relative to the config folders.
        differences: ``(key, original value, our value)`` for keys in both trees that differ.
        accepted: ``(key, original value, our value)`` of the differences that
            :data:`ACCEPTED_DEFAULT_DIFFERENCES` accepts (not counted).
        unknown_keys: keys the original file sets that our defaults do not have.
        error: why our file could not be resolved, if it could not.
        original_error: why the original file, resolved our way (:func:`resolve_ours`), is
            refused, if it is.
    """

    rel_path: str
    differences: List[Tuple[str, Any, Any]] = field(default_factory=list)
    accepted: List[Tuple[str, Any, Any]] = field(default_factory=list)
    unknown_keys: List[str] = field(default_factory=list)
    error: Optional[str] = None
    original_error: Optional[str] = None

    @property
    def differs(self) -> bool:
        return bool(self.differences or self.unknown_keys or self.error or self.original_error)


def list_configs(root: str) -> List[str]:
    """The ``.yaml`` files under ``root``, as sorted '/'-separated relative paths."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.endswith(".yaml"):
                found.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
    return sorted(found)


def our_configs_for(original_files: Sequence[str], configs_root: str, included_folders: Sequence[str] = (),
                    other_families_folders: Sequence[str] = ()) -> List[str]:
    """Our configs that belong to the compared family: those under ``included_folders`` when
    given, else under the top-level folders the original's config folder has (so ``quickstart/``
    and other families' folders are left out), less those under ``other_families_folders`` (the
    folders another family includes, e.g. SeMask's ``ade20k-150/semask_swin`` inside MaskFormer's
    ``ade20k-150``)."""
    def under(f: str, folders: Sequence[str]) -> bool:
        return any(f.startswith(d + "/") for d in folders)

    if included_folders:
        found = [f for f in list_configs(configs_root) if under(f, included_folders)]
    else:
        folders = {f.split("/")[0] for f in original_files if "/" in f}
        found = [f for f in list_configs(configs_root) if f.split("/")[0] in folders]
    return [f for f in found if not under(f, other_families_folders)]


def resolve_ours(path: str):
    """Our resolution of a config file: our defaults + every installed model family + the file,
    then the check of the keys that nothing reads (what :func:`segcore.engine.setup_cfg` does,
    less its machine-dependent ``MODEL.DEVICE`` fallback).

    Raises:
        segcore.config.ConfigError: missing or malformed file, a key our defaults do not have, or
            a key that nothing reads set to another value than its default.
    """
    from segcore.config import add_model_family_configs, check_unsupported_keys, get_cfg

    cfg = get_cfg()
    add_model_family_configs(cfg)
    defaults = cfg.clone()
    cfg.merge_from_file(path)
    check_unsupported_keys(cfg, defaults)
    return cfg


def our_default_keys() -> set:
    """The dotted keys of our default config (``get_cfg()`` + every installed model family)."""
    from segcore.config import add_model_family_configs, get_cfg

    cfg = get_cfg()
    add_model_family_configs(cfg)
    return set(flatten(cfg))


@dataclass
class Comparison:
    """The result of :func:`compare`."""

    reports: List[FileReport]
    only_original: List[str]
    only_here: List[str]
    original_defaults: Dict[str, Any]  # flattened original default config
    original_values: Dict[str, Dict[str, Any]]  # rel path -> flattened original resolution

    @property
    def differs(self) -> bool:
        return bool(self.only_original or self.only_here or any(r.differs for r in self.reports))


def compare(family: Family, original_root: str, detectron2_root: str, configs_root: str = DEFAULT_CONFIGS_ROOT
            ) -> Comparison:
    """Resolve every config of ``family`` on both sides and compare them key by key.

    Args:
        family: which original repository (see :data:`FAMILIES`).
        original_root: the original repository's checkout.
        detectron2_root: the Detectron2 checkout the original was released against.
        configs_root: our config folder.

    Raises:
        ComparisonError: a checkout or one of its expected files is missing.
    """
    original_configs = os.path.join(original_root, family.configs_dir)
    for what, path in [("original repository", original_configs), ("Detectron2", detectron2_root),
                       ("our config folder", configs_root)]:
        if not os.path.isdir(path):
            raise ComparisonError(f"The {what} folder {path} does not exist")
    original_files = [f for f in list_configs(original_configs) if family.compares(f)]
    if not original_files:
        raise ComparisonError(f"No .yaml file under {original_configs}")
    others = [d for other in FAMILIES.values() if other.name != family.name for d in other.included_folders
              if d not in family.included_folders]
    ours = our_configs_for(original_files, configs_root, family.included_folders, others)
    default_original = _original_default_config(family, original_root, detectron2_root)
    known_here = our_default_keys()

    reports, original_values = [], {}
    for rel in original_files:
        original_path = os.path.join(original_configs, rel)
        cfg = default_original()
        cfg.merge_from_file(original_path)
        original = flatten(cfg)
        original_values[rel] = original
        if rel not in ours:
            continue
        report = FileReport(rel)
        set_by_file = flatten(_load_original_yaml(original_path))
        report.unknown_keys = sorted(k for k in set_by_file if k not in known_here)
        try:
            resolve_ours(original_path)
        except Exception as e:  # noqa: BLE001 - reported per file
            report.original_error = f"{type(e).__name__}: {e}"
        try:
            here = flatten(resolve_ours(os.path.join(configs_root, rel)))
        except Exception as e:  # noqa: BLE001 - reported per file, the other files are still compared
            report.error = f"{type(e).__name__}: {e}"
        else:
            for k in sorted(original.keys() & here.keys()):
                if values_equal(original[k], here[k]):
                    continue
                accepted = (k in ACCEPTED_DEFAULT_DIFFERENCES and k not in set_by_file
                            and values_equal(original[k], ACCEPTED_DEFAULT_DIFFERENCES[k][0]))
                (report.accepted if accepted else report.differences).append((k, original[k], here[k]))
        reports.append(report)
    return Comparison(reports=reports, only_original=sorted(set(original_files) - set(ours)),
                      only_here=sorted(set(ours) - set(original_files)),
                      original_defaults=flatten(default_original()), original_values=original_values)


def format_report(comparison: Comparison, family: Family) -> Iterator[str]:
    """The lines printed for a comparison."""
    for r in comparison.reports:
        for key, original, here in r.accepted:
            yield f"{r.rel_path}: accepted: {key}: original {original!r}, here {here!r}"
        if not r.differs:
            continue
        yield r.rel_path
        if r.error:
            yield f"  cannot resolve ours: {r.error}"
        if r.original_error:
            yield f"  the original file does not run here unchanged: {r.original_error}"
        for key, original, here in r.differences:
            yield f"  {key}: original {original!r}, here {here!r}"
        for key in r.unknown_keys:
            yield f"  {key}: set by the original file, not a key of our defaults"
    for rel in comparison.only_original:
        yield f"{rel}: only in the original ({family.repository})"
    for rel in comparison.only_here:
        yield f"{rel}: only here"
    n_diff = sum(r.differs for r in comparison.reports)
    yield (f"{len(comparison.reports)} config(s) compared, {n_diff} differ; {len(comparison.only_original)} only in "
           f"the original, {len(comparison.only_here)} only here")


def fixture_dict(comparison: Comparison, family: Family, *, original_revision: str, detectron2_revision: str,
                 shared_keys: set) -> dict:
    """The fixture: the original's resolved value of every key that our defaults also have and
    that :data:`FIXTURE_KEY_PREFIXES` selects, for each original config file.

    To stay small it stores the original's default config once (``defaults``) and, per config
    file, only the keys whose resolved value differs from it (``configs``): the value of key K for
    file F is ``configs[F].get(K, defaults[K])``. ``accepted_differences`` lists, per key, the
    files whose difference :data:`ACCEPTED_DEFAULT_DIFFERENCES` accepts, with the reason.
    """

    def selected(key: str) -> bool:
        return key in shared_keys and any(key == p or key.startswith(p + ".") for p in FIXTURE_KEY_PREFIXES)

    defaults = {k: v for k, v in sorted(comparison.original_defaults.items()) if selected(k)}
    accepted: Dict[str, dict] = {}
    for r in comparison.reports:
        for key, original, _here in r.accepted:
            entry = accepted.setdefault(key, {"original": original, "reason": ACCEPTED_DEFAULT_DIFFERENCES[key][1],
                                              "configs": []})
            entry["configs"].append(r.rel_path)
    configs = {}
    for rel, values in sorted(comparison.original_values.items()):
        configs[rel] = {k: v for k, v in sorted(values.items())
                        if k in defaults and not values_equal(v, defaults[k])}
    folders = {"folders": list(family.included_folders)} if family.included_folders else {}
    return {
        **folders,
        "original": {"repository": family.repository, "revision": original_revision,
                     "detectron2_revision": detectron2_revision,
                     "config_functions": [f"{f.checkout}:{f.path}:{f.function}" for f in family.config_functions]},
        "generated_by": f"tools/dev/compare_configs_with_original.py --family {family.name} --write-fixture",
        "key_prefixes": list(FIXTURE_KEY_PREFIXES),
        "accepted_differences": accepted,
        "defaults": defaults,
        "configs": configs,
    }


def write_fixture(path: str, data: dict) -> None:
    """Write ``data`` (from :func:`fixture_dict`) as JSON with one key per line, so that a change
    of one value is a one-line diff."""
    lines = ["{"]
    for name in ["folders", "original", "generated_by", "key_prefixes", "accepted_differences"]:
        if name not in data:
            continue
        lines.append(f"  {json.dumps(name)}: {json.dumps(data[name])},")

    def block(name: str, values: dict, indent: str) -> List[str]:
        if not values:
            return [f"{indent}{json.dumps(name)}: {{}}"]
        entries = [f"{indent}  {json.dumps(k)}: {json.dumps(v)}" for k, v in values.items()]
        return [f"{indent}{json.dumps(name)}: {{", ",\n".join(entries), f"{indent}}}"]

    lines += block("defaults", data["defaults"], "  ")
    lines[-1] += ","
    lines.append('  "configs": {')
    items = list(data["configs"].items())
    for i, (rel, values) in enumerate(items):
        lines += block(rel, values, "    ")
        if i + 1 < len(items):
            lines[-1] += ","
    lines += ["  }", "}"]
    text = "\n".join(lines) + "\n"
    if json.loads(text) != json.loads(json.dumps(data)):  # the hand-made layout must be the same JSON
        raise AssertionError("write_fixture produced JSON that does not read back as the data")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original-root", required=True, help="checkout of the original repository")
    parser.add_argument("--detectron2-root", default=None,
                        help="checkout of Detectron2 (default: a 'detectron2' folder beside --original-root)")
    parser.add_argument("--family", default="mask_former", choices=sorted(FAMILIES),
                        help="which original repository --original-root is")
    parser.add_argument("--configs-root", default=DEFAULT_CONFIGS_ROOT, help="our config folder")
    parser.add_argument("--write-fixture", metavar="PATH", default=None,
                        help="also write the original values of the architecture, inference, data and solver keys "
                             "as JSON (tests/fixtures/maskformer_original_configs.json, "
                             "mask2former_original_configs.json, semask_maskformer_original_configs.json or "
                             "semask_mask2former_original_configs.json)")
    parser.add_argument("--original-revision", default="unrecorded", help="recorded in the fixture")
    parser.add_argument("--detectron2-revision", default="unrecorded", help="recorded in the fixture")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the comparison; return the exit status (0 equal, 1 something differs, 2 usage error)."""
    args = parse_args(argv)
    # fvcore warns once per original file that it is read with yaml.unsafe_load (see the module docstring).
    logging.getLogger("fvcore.common.config").setLevel(logging.ERROR)
    family = FAMILIES[args.family]
    detectron2_root = args.detectron2_root or os.path.join(os.path.dirname(os.path.abspath(args.original_root)),
                                                           "detectron2")
    try:
        comparison = compare(family, args.original_root, detectron2_root, args.configs_root)
    except ComparisonError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in format_report(comparison, family):
        print(line)
    if args.write_fixture:
        data = fixture_dict(comparison, family, original_revision=args.original_revision,
                            detectron2_revision=args.detectron2_revision, shared_keys=our_default_keys())
        write_fixture(args.write_fixture, data)
        print(f"wrote {args.write_fixture} ({os.path.getsize(args.write_fixture) // 1024} KiB, "
              f"{len(data['configs'])} configs)")
    return 1 if comparison.differs else 0


if __name__ == "__main__":
    sys.exit(main())
