"""tools/benchmark_msda.py, end to end at a tiny size: a configuration in its own process, the
printed line and the Markdown table written with ``--output``. The timing and the table's rows are
tested in ``tests/mask2former/ops/test_benchmark.py``."""
from tests.e2e_utils import load_script


def test_one_configuration_in_its_own_process(tmp_path, capsys):
    tool = load_script("benchmark_msda_cli", "tools/benchmark_msda.py")
    out = tmp_path / "table.md"
    results = tool.main(["--device", "cpu", "--sizes", "64", "--batch", "1", "--threads", "1", "--repeats", "1",
                         "--mode", "forward", "--impl", "pytorch", "--output", str(out)])
    assert [(r["impl"], r["mode"], r["size"], r["threads"]) for r in results] == [("pytorch", "forward", 64, 1)]
    printed = capsys.readouterr().out
    first = printed.splitlines()[0]
    assert first.startswith("cpu 64 forward pytorch: ") and "[peak RSS" in first
    assert first.endswith("the PyTorch reference (impl='pytorch')")
    text = out.read_text()
    assert text.startswith("Machine: CPU: ") and "Batch 1, float32, median of 1 calls after 1 warm-up" in text
    assert text.rstrip().splitlines()[-2].startswith("| device | input | mode |") and text in printed
