"""Keys that nothing reads are accepted at their default and refused otherwise; every other key is read."""
import os
import re
import subprocess

import pytest

from segcore.config import UNSUPPORTED_KEYS, ConfigError, add_model_family_configs, get_cfg
from segcore.engine import setup_cfg
from tests.paths import REPO_ROOT


def _yaml_for(key: str, value) -> str:
    parts = key.split(".")
    lines = [f"{'  ' * i}{p}:" for i, p in enumerate(parts[:-1])]
    lines.append(f"{'  ' * (len(parts) - 1)}{parts[-1]}: {value!r}")
    return "\n".join(lines) + "\n"


def _other_value(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 3
    if isinstance(value, str):
        return value + "_x"
    return list(value) + [7] if isinstance(value, (list, tuple)) else value


@pytest.mark.parametrize("key", sorted(UNSUPPORTED_KEYS))
def test_a_non_default_value_is_refused_with_the_key_and_the_reason(tmp_path, key):
    defaults = get_cfg()
    add_model_family_configs(defaults)
    node = defaults
    for part in key.split("."):
        node = node[part]
    path = tmp_path / "cfg.yaml"
    path.write_text(_yaml_for(key, node))
    assert setup_cfg(str(path)) is not None  # the default itself is fine
    equivalent = UNSUPPORTED_KEYS[key].equivalent_values
    for value in equivalent:  # so are the values that mean the same here
        path.write_text(_yaml_for(key, value))
        assert setup_cfg(str(path)) is not None
    other = _other_value(node)
    if any(other == value for value in equivalent):  # a bool whose both values are accepted (MODEL.MASK_ON)
        return
    path.write_text(_yaml_for(key, other))
    with pytest.raises(ConfigError, match=re.escape(key)) as e:
        setup_cfg(str(path))
    assert UNSUPPORTED_KEYS[key].reason in str(e.value)


def test_equivalent_values_are_accepted(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("INPUT:\n  MASK_FORMAT: bitmask\n")
    assert setup_cfg(str(path)).INPUT.MASK_FORMAT == "bitmask"
    with pytest.raises(ConfigError, match="INPUT.MASK_FORMAT"):
        setup_cfg(str(path), ["INPUT.MASK_FORMAT", "rle"])


def _package_sources() -> str:
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO_ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    keep = [f for f in files if not f.startswith(("tests/", "tools/dev/", "datasets/"))
            and not f.endswith(("config/defaults.py", "config/unsupported.py"))]
    return "\n".join(open(os.path.join(REPO_ROOT, f), encoding="utf-8").read() for f in keep)


def _leaf_keys(node, prefix=""):
    for k, v in node.items():
        if isinstance(v, dict):
            yield from _leaf_keys(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def test_every_key_is_read_somewhere_or_declared_unsupported():
    """A key whose name appears nowhere in the code is parsed and ignored: it must be declared."""
    cfg = get_cfg()
    add_model_family_configs(cfg)
    source = _package_sources()
    unread = [k for k in _leaf_keys(cfg) if k not in UNSUPPORTED_KEYS
              and not re.search(r"[.\"']" + re.escape(k.split(".")[-1]) + r"\b", source)]
    assert not unread, f"keys that nothing reads; read them or add them to UNSUPPORTED_KEYS: {unread}"


def test_declared_unsupported_keys_are_really_not_read():
    source = _package_sources()
    read = [k for k in UNSUPPORTED_KEYS
            if "." in k and re.search(r"\." + re.escape(".".join(k.split(".")[-2:])) + r"\b", source)]
    assert not read, f"these keys are read by the code; remove them from UNSUPPORTED_KEYS: {read}"
