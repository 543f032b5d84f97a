"""mask2former.ops.benchmark: one configuration timed in this process (tiny sizes; speed is never
asserted), the table of kernel against reference, the machine line."""
import pytest
import torch

from mask2former.ops import select_implementation
from mask2former.ops.benchmark import IMPLS, MODES, machine_description, markdown_table, time_configuration


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("impl", IMPLS)
def test_time_configuration(impl, mode):
    if impl == "kernel" and not select_implementation(torch.device("cpu"), torch.float32).is_kernel:
        pytest.skip("no compiled CPU kernel")
    threads = torch.get_num_threads()  # the call sets torch's threads: keep the test process's
    r = time_configuration(device="cpu", size=64, impl=impl, mode=mode, threads=threads, batch=1, repeats=2, warmup=1)
    assert (r["device"], r["size"], r["impl"], r["mode"], r["dtype"], r["threads"]) == ("cpu", 64, impl, mode, "float32",
                                                                                          threads)
    assert 0 < r["min_ms"] <= r["median_ms"] and r["peak_mib"] >= 0 and r["memory"].startswith("peak RSS")
    assert ("kernel" in r["implementation"]) == (impl == "kernel")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_kernel_asked_for_where_there_is_none():
    with pytest.raises(SystemExit, match="no compiled kernel for cuda float32"):
        time_configuration(device="cuda", size=64, impl="kernel", mode="forward", batch=1, repeats=1)


def _result(impl, mode, median, peak, size=512):
    return {"device": "cpu", "size": size, "impl": impl, "mode": mode, "median_ms": median, "min_ms": median / 2,
            "peak_mib": peak}


def test_markdown_table():
    results = [_result("pytorch", "forward_backward", 30.0, 40.0), _result("kernel", "forward_backward", 10.0, 10.0),
               _result("kernel", "forward", 2.0, 1.0), _result("pytorch", "forward", 8.0, 4.0),
               _result("kernel", "forward", 1.0, 1.0, size=1024)]  # no reference at 1024: left out
    lines = markdown_table(results).splitlines()
    assert lines[0].startswith("| device | input | mode | reference ms")
    assert lines[2:] == ["| cpu | 512x512 | forward | 8.0 (4.0) | 2.0 (1.0) | 4.0x | 4 | 1 | 0.25 |",
                         "| cpu | 512x512 | forward + backward | 30.0 (15.0) | 10.0 (5.0) | 3.0x | 40 | 10 | 0.25 |"]


def test_machine_description():
    text = machine_description(["cpu"], 3)
    assert text.startswith("CPU: ") and "; 3 torch threads; torch " + torch.__version__ in text and "GPU" not in text
