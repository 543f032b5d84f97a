"""segcore.benchmark's clock, statistics, memory meter, machine description, inputs and profiler."""
import pytest
import torch

from segcore.benchmark.machine import CpuInfo, describe_cpu
from segcore.benchmark import MemoryMeter, machine_info, profile_call, read_cpuinfo, summarize, timed
from segcore.benchmark.inputs import batches_of, synthetic_images, synthetic_training_batch


def test_summarize_per_image():
    summary = summarize([0.4, 0.2, 0.6], per_call_images=2)
    assert summary == {"median_s": 0.2, "min_s": 0.1, "max_s": 0.3, "throughput_img_s": 5.0, "calls": 3}
    assert summarize([0.0], 1)["throughput_img_s"] == float("inf")


def test_timed_returns_the_result():
    seconds, out = timed(lambda: sum(range(1000)), "cpu")
    assert out == 499500 and seconds >= 0


def test_memory_meter_keeps_the_largest_peak_and_increase(monkeypatch):
    from segcore.benchmark import memory

    readings = iter([(100, 150), (300, 320), (50, 400)])  # (resident before, peak during) per block
    state = {}
    monkeypatch.setattr(memory, "reset_peak_rss", lambda: state.get("reset", True))
    monkeypatch.setattr(memory, "rss_bytes", lambda: state.setdefault("now", next(readings))[0])
    monkeypatch.setattr(memory, "peak_rss_bytes", lambda: state.pop("now")[1])
    meter = MemoryMeter(device="cpu")
    for _ in range(2):
        with meter.measure():
            pass
    assert (meter.peak, meter.increase, meter.kind) == (320, 50, "peak_rss")
    state["reset"] = False  # where Linux cannot reset the peak, the report says so
    with meter.measure():
        pass
    assert (meter.peak, meter.increase, meter.kind) == (400, 350, "peak_rss_since_process_start")
    assert meter.as_dict() == {"peak_memory_mb": 0.0, "peak_memory_increase_mb": 0.0,
                               "memory_measure": "peak_rss_since_process_start"}


def test_memory_meter_reads_this_process():
    meter = MemoryMeter(device="cpu")
    with meter.measure():
        block = torch.ones(2**20)
        del block
    assert meter.peak > 0 and meter.as_dict()["memory_measure"].startswith("peak_rss")


def test_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 fma avx512f\n\n"
                    "processor\t: 1\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 fma avx512f\n")
    info = read_cpuinfo(str(path))
    assert info.model_names == ["Test CPU", "Test CPU"] and {"avx2", "avx512f"} <= info.flags
    assert "avx512" not in info.flags
    assert read_cpuinfo(str(tmp_path / "missing")) is None
    machine = machine_info("cpu", 2)
    assert machine["torch_threads"] == 2 and machine["torch"] == torch.__version__ and "avx512" in machine


def test_describe_cpu_names_the_vector_instructions():
    avx2 = describe_cpu(CpuInfo(["AMD EPYC"], frozenset({"fma", "avx", "avx2", "sse4_1"})))
    assert avx2.startswith("AMD EPYC, ") and "AVX2 + FMA" in avx2 and "no AVX-512" in avx2
    avx512 = describe_cpu(CpuInfo(["Intel Xeon"], frozenset({"avx2", "fma", "avx512f", "avx512bw", "amx_bf16"})))
    assert "AVX512BW + AVX512F" in avx512 and "no AVX-512" not in avx512 and avx512.endswith("AMX-BF16")
    assert "no AVX2" in describe_cpu(CpuInfo(["old"], frozenset({"sse4_1"})))


def test_inputs():
    images = synthetic_images(3, 16, 24, seed=0)
    assert len(images) == 3 and images[0].shape == (16, 24, 3) and images[0].dtype.name == "uint8"
    assert (images[0] == synthetic_images(1, 16, 24, seed=0)[0]).all()
    assert [len(b) for b in batches_of(images, 2)] == [2]
    assert [len(b) for b in batches_of(images[:1], 2)] == [2]  # cycled
    batch = synthetic_training_batch(num_classes=5, batch_size=2, height=32, width=40, seed=0)
    assert len(batch) == 2 and batch[0]["image"].shape == (3, 32, 40)
    instances = batch[0]["instances"]
    assert instances.gt_masks.shape == (8, 32, 40) and instances.gt_masks.any(dim=(1, 2)).all()
    assert int(instances.gt_classes.max()) < 5


def test_profile_lists_the_operators_with_the_most_self_time():
    x = torch.randn(64, 64)
    rows = profile_call(lambda: (x @ x).relu().sum(), rows=2)
    assert len(rows) == 2 and rows[0]["self_s"] >= rows[1]["self_s"]
    assert all(0 <= row["self_share"] <= 1 and row["calls"] >= 1 and row["op"] for row in rows)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA")
def test_memory_meter_on_cuda():
    meter = MemoryMeter(device="cuda")
    with meter.measure():
        block = torch.ones(2**20, device="cuda")
        del block
    assert meter.as_dict()["memory_measure"] == "cuda_max_memory_allocated" and meter.increase >= 4 * 2**20
