"""A one-process ``torch.distributed`` group (NCCL on a GPU, gloo on the CPU) driving this project's
collectives and a few ``DistributedDataParallel`` training steps of a config's model on its data.

``launch`` runs a world of one in-process, without a process group (as Detectron2's does), so
``train_net.py --num-gpus 1`` never reaches NCCL; and two processes cannot share one GPU under NCCL.
This is what one GPU can prove of the distributed path: the group starts, ``segcore.utils.comm``'s
barrier, gathers and reductions work over it, and DDP's gradient all-reduce runs through a real
Mask2Former training step.

    python -m mask2former.devcheck.distributed --device cuda --backend nccl \\
        --config-file configs/quickstart/mask2former_R18_quickstart.yaml --steps 3 --json result.json

Needs the config's training dataset (``$DETECTRON2_DATASETS``). Writes ``{"backend", "device",
"collectives", "losses", "problems": [...]}``; the exit status is 1 when a problem was found.
"""
from __future__ import annotations

import argparse
import json
import math
import socket
import sys
from datetime import timedelta
from typing import List, Optional


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_collectives(device) -> dict:
    """all_reduce, ``comm.all_gather``, ``comm.reduce_dict`` and ``comm.synchronize`` in a world of one:
    each must return its input."""
    import torch
    import torch.distributed as dist

    from segcore.utils import comm

    comm.create_local_process_group(1)
    comm.synchronize()
    tensor = torch.tensor([1.0, 2.0], device=device)
    dist.all_reduce(tensor)
    reduced = comm.reduce_dict({"loss": torch.tensor(3.0, device=device)})
    gathered = comm.all_gather({"rank": comm.get_rank()})
    return {"all_reduce": tensor.tolist() == [1.0, 2.0], "all_gather": gathered == [{"rank": 0}],
            "reduce_dict": float(reduced["loss"]) == 3.0, "world_size": comm.get_world_size(),
            "local_rank": comm.get_local_rank()}


def ddp_training_steps(config_file: str, opts: List[str], device, steps: int) -> List[float]:
    """``steps`` training steps (forward, losses, backward with DDP's all-reduce, the config's
    optimizer step) of the config's model on batches of its training loader; the total losses."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from segcore.data import build_dataset_mapper, build_detection_train_loader
    from segcore.engine import setup_cfg
    from segcore.modeling import build_model
    from segcore.solver import build_optimizer

    cfg = setup_cfg(config_file, ["MODEL.DEVICE", str(device), *opts])
    model = build_model(cfg)
    model.train()
    ddp = DistributedDataParallel(model, device_ids=[device.index or 0] if device.type == "cuda" else None)
    optimizer = build_optimizer(cfg, model)
    loader = iter(build_detection_train_loader(cfg, mapper=build_dataset_mapper(cfg, True)))
    losses = []
    for _ in range(steps):
        loss_dict = ddp(next(loader))
        total = sum(loss_dict.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(float(total.detach()))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return losses


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--backend", choices=("nccl", "gloo"), default=None, help="default: nccl on cuda, else gloo")
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", required=True)
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ...")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)

    import torch
    import torch.distributed as dist

    backend = args.backend or ("nccl" if args.device == "cuda" else "gloo")
    device = torch.device("cuda", 0) if args.device == "cuda" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    result: dict = {"backend": backend, "device": str(device), "problems": []}
    dist.init_process_group(backend=backend, init_method=f"tcp://127.0.0.1:{_free_port()}", world_size=1, rank=0,
                            timeout=timedelta(minutes=2))
    try:
        result["collectives"] = check_collectives(device)
        result["problems"] += [f"{name} did not return its input" for name, ok in result["collectives"].items()
                               if ok is False]
        result["losses"] = ddp_training_steps(args.config_file, args.opts, device, args.steps)
        if not all(math.isfinite(v) for v in result["losses"]):
            result["problems"].append(f"non-finite loss in DDP training: {result['losses']}")
    finally:
        dist.destroy_process_group()
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
