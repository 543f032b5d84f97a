"""retry_if_cuda_oom and the resident-memory readings (segcore.utils.memory)."""
import logging
import mmap

import numpy as np
import pytest
import torch

from segcore.utils.memory import retry_if_cuda_oom


class _FakeCudaTensor:
    """Looks like a CUDA tensor to retry_if_cuda_oom; ``.to`` returns a real CPU tensor."""

    device = torch.device("cuda", 0)

    def __init__(self, value):
        self.value = value
        self.moved_to = []

    def to(self, device):
        self.moved_to.append(device)
        return torch.tensor(self.value)


class _OomTimes:
    """A callable that raises ``error`` on its first ``times`` calls, then returns its arguments."""

    def __init__(self, times, error=None):
        self.times = times
        if error is None:
            error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        self.error = error
        self.calls = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if len(self.calls) <= self.times:
            raise self.error
        return args, kwargs


@pytest.fixture
def cuda_spy(monkeypatch):
    """Records torch.cuda.empty_cache calls; ``initialized`` sets what torch.cuda.is_initialized says."""

    class Spy:
        initialized = False
        empty_cache_calls = 0

    spy = Spy()

    def empty_cache():
        spy.empty_cache_calls += 1

    monkeypatch.setattr(torch.cuda, "empty_cache", empty_cache)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: spy.initialized)
    return spy


def test_no_oom_calls_once_and_touches_no_cuda(cuda_spy):
    func = _OomTimes(0)
    x = torch.ones(2)
    args, kwargs = retry_if_cuda_oom(func)(x, 3, scale=x)
    assert len(func.calls) == 1 and args[0] is x and kwargs["scale"] is x
    assert cuda_spy.empty_cache_calls == 0


def test_one_oom_empties_the_cache_and_retries_with_the_same_arguments(cuda_spy, caplog):
    cuda_spy.initialized = True
    func = _OomTimes(1)
    fake = _FakeCudaTensor(1.0)
    with caplog.at_level(logging.INFO, logger="segcore.utils.memory"):
        args, _ = retry_if_cuda_oom(func)(fake)
    assert len(func.calls) == 2 and args[0] is fake and fake.moved_to == []
    assert cuda_spy.empty_cache_calls == 1
    assert "CPU" not in caplog.text


def test_two_ooms_retry_on_cpu_and_log_it(cuda_spy, caplog):
    cuda_spy.initialized = True
    func = _OomTimes(2)
    gpu_arg, gpu_kwarg, cpu_arg = _FakeCudaTensor(1.0), _FakeCudaTensor(2.0), torch.zeros(3)
    nested = [_FakeCudaTensor(3.0)]
    # listen on the module's logger itself: an earlier setup_logger() may stop "segcore" propagating
    logger = logging.getLogger("segcore.utils.memory")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="segcore.utils.memory"):
            args, kwargs = retry_if_cuda_oom(func)(gpu_arg, cpu_arg, "text", nested, mask=gpu_kwarg, n=5)
    finally:
        logger.removeHandler(caplog.handler)
    assert len(func.calls) == 3 and cuda_spy.empty_cache_calls == 1
    assert isinstance(args[0], torch.Tensor) and args[0].device.type == "cpu" and args[0].item() == 1.0
    assert args[1] is cpu_arg and args[2] == "text" and args[3] is nested  # only top-level CUDA tensors move
    assert isinstance(kwargs["mask"], torch.Tensor) and kwargs["mask"].item() == 2.0 and kwargs["n"] == 5
    assert gpu_arg.moved_to == ["cpu"] and gpu_kwarg.moved_to == ["cpu"] and nested[0].moved_to == []
    # the first two calls got the original arguments
    assert func.calls[0][0][0] is gpu_arg and func.calls[1][1]["mask"] is gpu_kwarg
    assert "Attempting to copy inputs of" in caplog.text and "to CPU due to CUDA OOM" in caplog.text


def test_three_ooms_raise(cuda_spy):
    func = _OomTimes(3)
    with pytest.raises(torch.OutOfMemoryError):
        retry_if_cuda_oom(func)(torch.ones(1))
    assert len(func.calls) == 3


def test_oom_on_cpu_only_never_calls_cuda(cuda_spy):
    # CUDA not initialized (a CPU-only machine or CPU tensors): the retry must not touch CUDA
    func = _OomTimes(2)
    x = torch.ones(2)
    args, _ = retry_if_cuda_oom(func)(x)
    assert args[0] is x and len(func.calls) == 3
    assert cuda_spy.empty_cache_calls == 0


def test_real_cpu_run_leaves_cuda_uninitialized():
    if torch.cuda.is_initialized():
        pytest.skip("CUDA was initialized by an earlier test in this process")
    func = _OomTimes(2)
    retry_if_cuda_oom(func)(torch.ones(2))
    assert not torch.cuda.is_initialized()


def test_other_errors_propagate_at_once(cuda_spy):
    func = _OomTimes(1, error=ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        retry_if_cuda_oom(func)(1)
    assert len(func.calls) == 1
    func = _OomTimes(1, error=RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        retry_if_cuda_oom(func)(1)
    assert len(func.calls) == 1
    calls = []

    def oom_then_key_error():
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory.")
        raise KeyError("second")

    with pytest.raises(KeyError):
        retry_if_cuda_oom(oom_then_key_error)()
    assert len(calls) == 2


def test_plain_runtime_error_with_the_cuda_message_counts_as_oom(cuda_spy):
    func = _OomTimes(1, error=RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    retry_if_cuda_oom(func)()
    assert len(func.calls) == 2


def test_wraps_keeps_the_name_and_doc():
    def postprocess(x):
        """Docs."""
        return x

    wrapped = retry_if_cuda_oom(postprocess)
    assert wrapped.__name__ == "postprocess" and wrapped.__doc__ == "Docs." and wrapped(4) == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_real_cuda_tensors_fall_back_to_cpu():
    x = torch.arange(4.0, device="cuda")
    calls = []

    def double(t):
        calls.append(t.device.type)
        if t.is_cuda:
            raise torch.OutOfMemoryError("CUDA out of memory. (simulated)")
        return t * 2

    out = retry_if_cuda_oom(double)(x)
    assert calls == ["cuda", "cuda", "cpu"]
    assert out.device.type == "cpu" and out.tolist() == [0.0, 2.0, 4.0, 6.0]


def test_resident_memory_grows_with_an_allocation_and_the_peak_resets():
    from segcore.utils.memory import peak_rss_bytes, reset_peak_rss, rss_bytes

    size = 64 * 2**20
    before = rss_bytes()
    block = mmap.mmap(-1, size)  # fresh pages from the system (malloc could reuse resident ones)
    np.frombuffer(block, dtype=np.uint8)[:] = 1  # touched: now resident
    assert rss_bytes() - before > 48 * 2**20
    assert peak_rss_bytes() >= rss_bytes()
    block.close()
    if reset_peak_rss():  # where Linux allows it, the peak restarts from the current size
        assert peak_rss_bytes() - rss_bytes() < 48 * 2**20
