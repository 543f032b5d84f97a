"""The generator (``segcore.quickstart``) is imported only by its own modules, tools/quickstart.py and
the tests: no module of the packages, train_net.py or the demo imports it."""
import ast
import os

from tests.paths import DEMO, REPO_ROOT

GENERATOR = "segcore.quickstart"
#: the quickstart table and runs: light (the generator is imported when a run generates the data)
RUNS = "segcore.quickstart.runs"
PRODUCT = ("segcore", "mask_former", "mask2former", "semask")


def _module_name(path: str) -> str:
    return os.path.splitext(os.path.relpath(path, REPO_ROOT))[0].replace(os.sep, ".")


def _imported_modules(path: str):
    """The absolute names of the modules a file imports (``from a import b`` gives ``a`` and ``a.b``)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    package = _module_name(path).rsplit(".", 1)[0]
    if path.endswith("__init__.py"):
        package = _module_name(path)[: -len(".__init__")]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _files():
    generator_dir = os.path.join(REPO_ROOT, *GENERATOR.split("."))
    for top in PRODUCT:
        for folder, _, names in os.walk(os.path.join(REPO_ROOT, top)):
            if folder == generator_dir or folder.startswith(generator_dir + os.sep):
                continue
            yield from (os.path.join(folder, n) for n in names if n.endswith(".py"))
    yield os.path.join(REPO_ROOT, "train_net.py")
    yield from (os.path.join(DEMO, n) for n in os.listdir(DEMO) if n.endswith(".py"))


def test_no_product_module_imports_the_generator():
    offenders = {
        os.path.relpath(path, REPO_ROOT): name
        for path in _files()
        for name in _imported_modules(path)
        if (name == GENERATOR or name.startswith(GENERATOR + ".")) and not name.startswith(RUNS)
    }
    assert not offenders


def test_the_quickstart_table_does_not_load_the_generator():
    import subprocess
    import sys

    code = ("import sys; import segcore.quickstart.runs as r; r.quickstart_config('maskformer', 'semantic'); "
            "print(sorted(m for m in sys.modules if m.startswith(('skimage', 'segcore.quickstart.'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['segcore.quickstart.runs']"


def test_the_scan_sees_relative_and_absolute_imports():
    sample = os.path.join(REPO_ROOT, "segcore", "data", "datasets", "quickstart.py")
    names = set(_imported_modules(sample))
    assert {"segcore.data.catalog", "segcore.data.datasets.sem_seg.load_sem_seg"} <= names
