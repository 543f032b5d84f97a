"""The carried wheels: which requirements travel, the download (pip replaced by a stand-in), and
the offline install of what is missing (a real pip install of a small wheel made here)."""
import json
import subprocess
import sys
import zipfile

import pytest

from segcore.devcheck import wheels
from segcore.devcheck.wheels import WheelsError, download_wheels, install_missing


def test_names_are_normalized_as_pip_does():
    assert wheels.normalize("PyYAML") == "pyyaml" and wheels.normalize("lazy_loader") == "lazy-loader"
    assert wheels.wheel_distribution("/x/scikit_image-0.26.0-cp312-cp312-manylinux_2_28_x86_64.whl") == "scikit-image"


def test_the_closure_follows_requirements_but_not_into_torch():
    closure = wheels.requirement_closure(wheels.project_distribution())
    assert {"fvcore", "iopath", "yacs", "portalocker", "pycocotools", "termcolor", "torch"} <= set(closure)
    assert not any(name.startswith("nvidia-") or name in ("sympy", "triton") for name in closure)
    assert closure["fvcore"] == wheels.installed_version("fvcore")


def _fake_pip(dest_files, *, binary_fails=(), built_tag="py3-none-any"):
    """A stand-in for ``pip download`` / ``pip wheel`` that writes a file named like the wheel."""
    calls = []

    def run(command, **kwargs):
        calls.append(command)
        verb, spec = command[3], command[-1]
        name, version = spec.split("==")
        folder = command[command.index("-d" if verb == "download" else "-w") + 1]
        if verb == "download" and name in binary_fails:
            return subprocess.CompletedProcess(command, 1, "", "no matching distribution")
        tag = "cp312-abi3-manylinux2014_x86_64" if verb == "download" else built_tag
        path = f"{folder}/{name.replace('-', '_')}-{version}-{tag}.whl"
        with open(path, "wb") as f:
            f.write(b"x" * dest_files.get(name, 1000))
        return subprocess.CompletedProcess(command, 0, "", "")

    return run, calls


def test_download_carries_what_the_image_lacks_and_writes_the_manifest(tmp_path):
    (tmp_path / "old-1.0-py3-none-any.whl").write_bytes(b"stale")
    run, calls = _fake_pip({}, binary_fails=("fvcore", "iopath"))
    manifest = download_wheels(str(tmp_path), run=run, log=lambda line: None)
    carried = set(manifest["wheels"])
    assert {"fvcore", "iopath", "pycocotools", "yacs", "termcolor"} <= carried
    assert not carried & (wheels.NEVER_CARRIED | wheels.DEVICE_IMAGE_PROVIDES)
    assert manifest["wheels"]["fvcore"].endswith("-py3-none-any.whl")  # built from its source archive
    assert not (tmp_path / "old-1.0-py3-none-any.whl").exists()
    assert json.loads((tmp_path / wheels.MANIFEST_NAME).read_text()) == manifest
    assert set(manifest["not_carried"]) == set(manifest["requirements"]) - carried
    download = next(c for c in calls if c[3] == "download")
    assert "--python-version" in download and download[download.index("--python-version") + 1] == wheels.DEVICE_PYTHON
    assert "--no-deps" in download and "--only-binary=:all:" in download


def test_download_refuses_what_cannot_travel(tmp_path):
    run, _ = _fake_pip({}, binary_fails=("fvcore",), built_tag="cp311-cp311-linux_x86_64")
    with pytest.raises(WheelsError, match="not pure Python"):
        download_wheels(str(tmp_path / "a"), run=run, log=lambda line: None)
    run, _ = _fake_pip({"pycocotools": wheels.CARRY_LIMIT_BYTES + 1})
    with pytest.raises(WheelsError, match="exceed"):
        download_wheels(str(tmp_path / "b"), run=run, log=lambda line: None)


def _wheel(folder, name, version, module):
    """A minimal pure-Python wheel with one module."""
    dist_info = f"{name}-{version}.dist-info"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{module}.py", "VALUE = 42\n")
        z.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{dist_info}/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        files = [f"{module}.py", *(f"{dist_info}/{n}" for n in ("METADATA", "WHEEL", "RECORD"))]
        z.writestr(f"{dist_info}/RECORD", "".join(f"{f},,\n" for f in files))
    return path


def test_install_puts_the_missing_carried_wheels_on_the_path_and_names_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = tmp_path / "wheels"
    folder.mkdir()
    _wheel(folder, "devcheck_fake_pkg", "0.1", "devcheck_fake_module")
    _wheel(folder, "tabulate", "0.0.1", "tabulate_never_installed")
    requirements = {"devcheck-fake-pkg": "0.1", "devcheck-absent": "1.0", "tabulate": "0.0.1"}
    (folder / wheels.MANIFEST_NAME).write_text(json.dumps({"requirements": requirements}))
    log = tmp_path / "pip.log"
    result = install_missing(str(folder), str(tmp_path / "site"), log_path=str(log))
    assert result["missing"] == ["devcheck-absent", "devcheck-fake-pkg"]
    assert result["installed"] == ["devcheck-fake-pkg"] and result["missing_not_carried"] == ["devcheck-absent"]
    assert result["problems"] == ["missing and not installed: devcheck-absent"]
    assert result["version_differences"]["tabulate"]["carried"] == "0.0.1"  # present here: never replaced
    assert sys.path[0] == str(tmp_path / "site") and wheels.installed_version("devcheck-fake-pkg") == "0.1"
    import devcheck_fake_module

    assert devcheck_fake_module.VALUE == 42 and "--no-index" in log.read_text()
    sys.modules.pop("devcheck_fake_module")


def test_without_wheels_the_installed_project_says_what_it_needs(tmp_path):
    result = install_missing(str(tmp_path / "absent"), str(tmp_path / "site"))
    assert result["wheels_dir"] is None and result["requirements"] > 10
    assert result["missing"] == [] and result["installed"] == [] and result["problems"] == []
