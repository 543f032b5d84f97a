"""Carry the Python packages a lent machine lacks as wheels, and install them there without a network.

Here (a machine with the package registry): :func:`download_wheels` follows this project's
requirements (``install_requires``, read from the installed distribution's metadata) through their
own requirements, leaves out what the GPU machines' image provides (:data:`DEVICE_IMAGE_PROVIDES`)
and what never travels (:data:`NEVER_CARRIED`), and downloads a wheel of each of the rest, at the
version installed here, for the machine's Python (:data:`DEVICE_PYTHON`) and platform; a project
published only as a source archive (fvcore, iopath) is built into a pure-Python wheel. It writes
``manifest.json`` beside the wheels (every requirement of the closure with its version here, and
which wheel carries which) and checks that the wheels and the working tree fit in what may travel
(:data:`CARRY_LIMIT_BYTES`).

There (no network): :func:`install_missing` looks up every requirement of the manifest among the
installed distributions, installs the carried wheels of the missing ones into a target folder
(``pip install --no-index --no-deps --target``, nothing else is touched: a package the machine has is
never replaced) and puts that folder on ``sys.path``; the caller passes it on in ``PYTHONPATH``.
"""
from __future__ import annotations

import glob
import importlib
import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
from typing import Callable, Dict, Iterable, Optional, Sequence

__all__ = ["CARRY_LIMIT_BYTES", "DEVICE_IMAGE_PROVIDES", "DEVICE_PLATFORMS", "DEVICE_PYTHON", "MANIFEST_NAME",
           "NEVER_CARRIED", "WheelsError", "download_wheels", "install_missing", "installed_version",
           "normalize", "project_distribution", "requirement_closure", "wheel_distribution",
           "working_tree_bytes"]

#: what may travel to the lent machine with the working tree: tracked and untracked-not-ignored
#: files plus the carried folders, together
CARRY_LIMIT_BYTES = 64 * 2**20
#: the lent machines' Python (major.minor) and platform tags of the wheels to download
DEVICE_PYTHON = "3.12"
DEVICE_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_24_x86_64",
                    "manylinux_2_27_x86_64", "manylinux_2_28_x86_64")
MANIFEST_NAME = "manifest.json"
#: never carried, nor followed into their own requirements: torch (with its CUDA libraries) is the
#: machine's own and must not be replaced; the others are large and part of every such image
NEVER_CARRIED = frozenset({"torch", "numpy", "scipy", "opencv-python-headless", "setuptools", "pip"})
#: the requirements of this project that the GPU machines' image holds (its package list, read on
#: 2026-11-17: numpy, scipy, opencv, pillow, pyyaml, tqdm, tabulate, portalocker, tensorboard,
#: scikit-image, matplotlib and what they need), so they are not carried by default; a machine that
#: lacks one of them is told so by :func:`install_missing`
DEVICE_IMAGE_PROVIDES = frozenset({
    "pillow", "pyyaml", "tqdm", "tabulate", "portalocker", "typing-extensions", "packaging", "six",
    "tensorboard", "tensorboard-data-server", "absl-py", "grpcio", "markdown", "protobuf", "werkzeug", "markupsafe",
    "scikit-image", "imageio", "tifffile", "lazy-loader", "networkx",
    "matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing", "python-dateutil",
})
#: the environment markers of requirements are evaluated for the lent machine
_DEVICE_MARKERS = {"python_version": DEVICE_PYTHON, "python_full_version": f"{DEVICE_PYTHON}.0",
                   "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                   "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython",
                   "extra": ""}


class WheelsError(RuntimeError):
    """Preparing the wheels failed: a download or build, or they do not fit in what may travel."""


def normalize(name: str) -> str:
    """A distribution name in its normalized form (PEP 503: ``PyYAML`` -> ``pyyaml``, ``lazy_loader`` ->
    ``lazy-loader``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_distribution(filename: str) -> str:
    """The normalized distribution name of a wheel file (``fvcore-0.1.5-py3-none-any.whl`` -> ``fvcore``)."""
    return normalize(os.path.basename(filename).split("-", 1)[0])


def installed_version(name: str) -> Optional[str]:
    """The version of distribution ``name`` that this interpreter finds on ``sys.path`` (None: not installed)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def project_distribution(package: str = "segcore") -> Optional[str]:
    """The installed distribution that provides the import package ``package`` (None when this
    project is not installed, e.g. run from a copy of the repository)."""
    names = metadata.packages_distributions().get(package)
    return names[0] if names else None


def requirement_closure(root: str, markers: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The requirements of installed distribution ``root``, and theirs, recursively, as installed here.

    Extras are not followed; :data:`NEVER_CARRIED` entries are kept but not followed; markers are
    evaluated for ``markers`` (default: the lent machine's Python and platform).

    Returns:
        normalized name -> installed version, ``root`` itself excluded.

    Raises:
        WheelsError: ``root``, or one of its requirements, is not installed here.
    """
    from packaging.requirements import Requirement

    env = dict(_DEVICE_MARKERS if markers is None else markers)
    closure: Dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError as e:
            raise WheelsError(f"{name} is not installed here: install the project with its requirements first") from e
        for text in requires:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = normalize(req.name)
            if dep in closure:
                continue
            version = installed_version(dep)
            if version is None:
                raise WheelsError(f"{dep} (required by {name}) is not installed here")
            closure[dep] = version
            if dep not in NEVER_CARRIED:
                todo.append(dep)
    return closure


def working_tree_bytes(repo_root: str) -> Optional[int]:
    """Bytes of the files that travel with the working tree (tracked, and untracked but not
    ignored: ``git ls-files -co --exclude-standard``); None where git cannot tell."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo_root,
                                capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    total = 0
    for rel in listed.decode("utf-8", "surrogateescape").split("\0"):
        path = os.path.join(repo_root, rel)
        if rel and os.path.isfile(path) and not os.path.islink(path):
            total += os.path.getsize(path)
    return total


def _pure_python(filename: str) -> bool:
    tags = os.path.basename(filename)[:-len(".whl")].split("-")[-3:]
    return tags[1] == "none" and tags[2] == "any"


def download_wheels(dest: str, *, include_all: bool = False, repo_root: Optional[str] = None,
                    pip: Sequence[str] = (sys.executable, "-m", "pip"),
                    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                    log: Callable[[str], None] = print) -> dict:
    """Download the wheels this project's requirements need on the lent machine into ``dest``.

    ``dest``'s old wheels are removed first (two versions of one package stop an install there).

    Args:
        dest: the folder (created; it must be ignored by git, so that only ``carry`` sends it).
        include_all: carry every requirement but :data:`NEVER_CARRIED`, even those the image holds.
        repo_root: the working tree whose size counts toward the limit (default: none counted).
        pip: how to call pip. run: ``subprocess.run`` (replaceable in tests). log: progress lines.

    Returns:
        the manifest written to ``dest/manifest.json``: ``{"project", "python", "requirements":
        {name: version}, "wheels": {name: file}, "not_carried": [...], "wheel_bytes", "tree_bytes"}``.

    Raises:
        WheelsError: the project is not installed here, a wheel could be neither downloaded nor built
            as pure Python, or the wheels and the working tree exceed :data:`CARRY_LIMIT_BYTES`.
    """
    project = project_distribution()
    if project is None:
        raise WheelsError("this project is not installed here (pip install -e .): its requirements are read "
                          "from the installed metadata")
    closure = requirement_closure(project)
    skip = NEVER_CARRIED if include_all else NEVER_CARRIED | DEVICE_IMAGE_PROVIDES
    carried = {name: version for name, version in sorted(closure.items()) if name not in skip}
    os.makedirs(dest, exist_ok=True)
    for old in glob.glob(os.path.join(dest, "*.whl")):
        os.remove(old)
    platforms = [arg for p in DEVICE_PLATFORMS for arg in ("--platform", p)]
    wheels: Dict[str, str] = {}
    for name, version in carried.items():
        spec = f"{name}=={version}"
        binary = run([*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", DEVICE_PYTHON,
                      "--implementation", "cp", *platforms, "--disable-pip-version-check", "-q", "-d", dest, spec],
                     capture_output=True, text=True)
        how = "downloaded"
        if binary.returncode != 0:  # no wheel for that Python: a source archive, built here if pure Python
            built = run([*pip, "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", dest, spec],
                        capture_output=True, text=True)
            how = "built from its source archive"
            if built.returncode != 0:
                raise WheelsError(f"{spec}: no wheel for Python {DEVICE_PYTHON} and the source archive did not build:\n"
                                  f"{binary.stderr[-1500:]}\n{built.stderr[-1500:]}")
        found = [f for f in glob.glob(os.path.join(dest, "*.whl")) if wheel_distribution(f) == name]
        if len(found) != 1:
            raise WheelsError(f"{spec}: expected one wheel in {dest}, found {[os.path.basename(f) for f in found]}")
        if how.startswith("built") and not _pure_python(found[0]):
            os.remove(found[0])
            raise WheelsError(f"{spec} has no wheel for Python {DEVICE_PYTHON} on Linux x86-64 and is not pure "
                              "Python: it cannot be built for the lent machine here")
        wheels[name] = os.path.basename(found[0])
        log(f"{wheels[name]}: {how}, {os.path.getsize(found[0]) / 2**20:.2f} MiB")
    wheel_bytes = sum(os.path.getsize(os.path.join(dest, f)) for f in wheels.values())
    tree_bytes = working_tree_bytes(repo_root) if repo_root else None
    total = wheel_bytes + (tree_bytes or 0)
    if total > CARRY_LIMIT_BYTES:
        raise WheelsError(f"the wheels ({wheel_bytes / 2**20:.1f} MiB) and the working tree "
                          f"({(tree_bytes or 0) / 2**20:.1f} MiB) exceed the {CARRY_LIMIT_BYTES / 2**20:.0f} MiB that "
                          "may travel" + ("" if not include_all else ": leave out --all"))
    manifest = {"project": project, "python": DEVICE_PYTHON, "requirements": closure, "wheels": wheels,
                "not_carried": sorted(set(closure) - set(carried)), "wheel_bytes": wheel_bytes,
                "tree_bytes": tree_bytes}
    with open(os.path.join(dest, MANIFEST_NAME), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    log(f"{len(wheels)} wheels, {wheel_bytes / 2**20:.2f} MiB" + (
        f"; with the working tree {total / 2**20:.1f} of {CARRY_LIMIT_BYTES / 2**20:.0f} MiB" if tree_bytes else ""))
    return manifest


def _read_manifest(wheels_dir: str) -> Optional[dict]:
    path = os.path.join(wheels_dir, MANIFEST_NAME)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _required(manifest: Optional[dict], wheel_files: Iterable[str]) -> Optional[Dict[str, str]]:
    """What must be installed: the manifest's requirements, else this project's own (when it is
    installed), else the carried wheels; None where nothing tells."""
    if manifest is not None:
        return dict(manifest["requirements"])
    project = project_distribution()
    if project is not None:
        try:
            return requirement_closure(project, markers={})
        except WheelsError:
            pass  # a requirement is missing here: fall back to what the wheels say
    names = {wheel_distribution(f): "" for f in wheel_files}
    return names or None


def install_missing(wheels_dir: Optional[str], target: str, *, python: str = sys.executable,
                    log_path: Optional[str] = None,
                    run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> dict:
    """Install the carried wheels of the requirements this interpreter lacks into ``target``.

    Args:
        wheels_dir: the carried folder (:func:`download_wheels`); None or missing: nothing to install.
        target: the folder the wheels go to; added to ``sys.path`` when anything was installed.
        python: the interpreter whose pip installs them. log_path: pip's output goes there.
        run: ``subprocess.run`` (replaceable in tests).

    Returns:
        ``{"wheels_dir", "manifest", "requirements", "missing", "installed", "missing_not_carried",
        "version_differences": {name: {"here", "carried"}}, "target", "problems"}``: ``missing`` is
        what was absent before, ``installed`` what pip installed (and this interpreter now finds),
        ``problems`` what is still wrong (empty: every requirement is there).
    """
    present = wheels_dir is not None and os.path.isdir(wheels_dir)
    wheel_files = sorted(glob.glob(os.path.join(wheels_dir, "*.whl"))) if present else []
    manifest = _read_manifest(wheels_dir) if present else None
    required = _required(manifest, wheel_files)
    by_name = {wheel_distribution(f): f for f in wheel_files}
    result: dict = {"wheels_dir": wheels_dir if present else None, "manifest": manifest is not None,
                    "requirements": len(required or {}), "missing": [], "installed": [], "missing_not_carried": [],
                    "version_differences": {}, "target": None, "problems": []}
    if required is None:
        result["problems"].append("no wheels folder and this project is not installed: the requirements are unknown")
        return result
    missing = sorted(name for name in required if installed_version(name) is None)
    result["missing"] = missing
    for name, carried_version in sorted(required.items()):
        here = installed_version(name)
        if here is not None and carried_version and here != carried_version and name in by_name:
            result["version_differences"][name] = {"here": here, "carried": carried_version}
    to_install = [by_name[n] for n in missing if n in by_name]
    result["missing_not_carried"] = [n for n in missing if n not in by_name]
    if to_install:
        os.makedirs(target, exist_ok=True)
        command = [python, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", "--upgrade",
                   "--disable-pip-version-check", "--target", target, *to_install]
        done = run(command, capture_output=True, text=True)
        if log_path is not None:
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
        if done.returncode != 0:
            result["problems"].append(f"pip install from {wheels_dir} failed (exit code {done.returncode}): "
                                      f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
        else:
            if target not in sys.path:
                sys.path.insert(0, target)
            importlib.invalidate_caches()
            result["target"] = target
        result["installed"] = [n for n in missing if n in by_name and installed_version(n) is not None]
    still = [n for n in missing if installed_version(n) is None]
    if still:
        result["problems"].append(f"missing and not installed: {', '.join(still)}")
    return result
