"""launch(): direct call for one process, 2 CPU processes (gloo) with object gathers."""
import json
import os

import pytest
import torch.distributed as dist

from segcore.engine import launch
from segcore.utils import comm

_CALLS = []


def _record(x):
    _CALLS.append((x, comm.get_world_size(), comm.get_rank()))


def test_world_size_one_calls_directly():
    launch(_record, 1, args=("hello",))
    assert _CALLS == [("hello", 1, 0)]
    assert comm.all_gather({"a": 1}) == [{"a": 1}]
    assert comm.gather(3) == [3]
    assert comm.reduce_dict({"x": 1}) == {"x": 1}
    assert comm.get_local_rank() == 0 and comm.is_main_process()


def _gather_worker(out_dir):
    import torch

    rank = comm.get_rank()
    gathered = comm.all_gather({"rank": rank, "payload": "x" * (rank + 1)})
    to_main = comm.gather(rank * 10)
    reduced = comm.reduce_dict({"v": torch.tensor(float(rank + 1))})
    comm.synchronize()
    result = {
        "world_size": comm.get_world_size(),
        "local_rank": comm.get_local_rank(),
        "local_size": comm.get_local_size(),
        "gathered": gathered,
        "to_main": to_main,
        "reduced": float(reduced["v"]),
        "seed": comm.shared_random_seed(),
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo required")
def test_two_cpu_processes_all_gather(tmp_path):
    launch(_gather_worker, 2, dist_url="auto", args=(str(tmp_path),))
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r, res in enumerate(results):
        assert res["world_size"] == 2 and res["local_rank"] == r and res["local_size"] == 2
        assert res["gathered"] == [{"rank": 0, "payload": "x"}, {"rank": 1, "payload": "xx"}]
    assert results[0]["to_main"] == [0, 10] and results[1]["to_main"] == []
    assert results[0]["reduced"] == pytest.approx(1.5)  # mean of 1 and 2, on rank 0
    assert results[0]["seed"] == results[1]["seed"]
