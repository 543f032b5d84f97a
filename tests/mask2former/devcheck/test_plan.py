"""The device check's plan for a GPU machine, checked here where it cannot run: every command line is
one its program accepts (train_net.py's parser and config keys, tools/benchmark.py's options, the
check's own programs), the files and tests it names exist, the CUDA test selection collects the CUDA
tests, and the build targets the device's architecture; and the ``--cpu`` plan's differences."""
import os
import subprocess
import sys

import pytest

from mask2former.devcheck import distributed, kernels, op_benchmark
from mask2former.devcheck.plan import (GPU_SIZES, QUICKSTART_GENERATORS, build_plan,
                                       quickstart_generator_command)
from segcore.devcheck.context import CheckContext
from segcore.engine import default_argument_parser, setup_cfg
from tests.paths import REPO_ROOT

H100 = {"cpu_count": 16, "gpu": {"name": "NVIDIA H100 80GB HBM3", "arch": "9.0", "memory_gib": 79.2}}


def _ctx(tmp_path, *, cpu=False, needs_metadata=False):
    return CheckContext(repo_root=REPO_ROOT, work_dir=str(tmp_path), out_dir=str(tmp_path), cpu=cpu,
                        python=sys.executable, machine={"cpu_count": 2} if cpu else H100,
                        metadata_dir=str(tmp_path / "meta"), needs_metadata=needs_metadata)


@pytest.fixture(scope="module")
def gpu_plan(tmp_path_factory):
    return build_plan(_ctx(tmp_path_factory.mktemp("gpu"), needs_metadata=True))


def _steps(plan):
    return {s.name: s for s in plan.steps}


def _collected(selection):
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *selection],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=600).stdout
    return [line for line in out.splitlines() if "::" in line]


def test_the_gpu_plan_has_every_step_of_the_issue_in_phases(gpu_plan):
    steps = _steps(gpu_plan)
    assert list(steps)[:8] == ["metadata", "build", "dataset", "kernel_tests", "reference", "distributed", "train_fp16",
                               "train_bf16"]
    assert gpu_plan.phases() == ["prepare", "checks", "benchmarks"]
    assert gpu_plan.parallel == {"prepare": 3, "checks": 5, "benchmarks": 1}
    benchmarks = {name for name in steps if name.startswith("bench_") and name != "bench_op"}
    assert benchmarks == {f"bench_infer_{m}_{p}_b{b}" for m in ("r50", "swint") for p in ("fp32", "bf16", "compile")
                          for b in (1, 8)} | {f"bench_train_r50_{p}_b{b}" for p in ("fp32", "bf16") for b in (2, 8)}
    assert "bench_op" in steps and all(steps[n].phase == "benchmarks" for n in benchmarks)
    assert steps["train_fp16"].needs == steps["distributed"].needs == ("dataset", "metadata")
    assert steps["reference"].needs == steps["bench_infer_r50_fp32_b1"].needs == ("metadata",)
    assert steps["kernel_tests"].needs == steps["bench_op"].needs == ()


def test_the_kernels_are_built_in_place_for_the_device_and_the_metadata_apart(gpu_plan, tmp_path):
    (egg_info,) = _steps(gpu_plan)["metadata"].commands
    assert egg_info[1:5] == ["setup.py", "-q", "egg_info", "--egg-base"] and egg_info[-1].endswith("meta")
    assert _steps(gpu_plan)["metadata"].env == {"MSDA_DISABLE_EXTENSION": "1", "FORCE_CUDA": None}
    build = _steps(gpu_plan)["build"]
    build_ext, check = build.commands
    assert build_ext[1:] == ["setup.py", "build_ext", "--inplace"]
    assert (build.env["FORCE_CUDA"], build.env["TORCH_CUDA_ARCH_LIST"], build.env["MAX_JOBS"]) == ("1", "9.0", "16")
    assert build.env["MSDA_DISABLE_EXTENSION"] is None
    args = kernels.build_parser().parse_args(check[3:])
    assert args.require == ["cpu", "cuda"] and args.lib_dir is None
    assert check[1:3] == ["-m", "mask2former.devcheck.kernels"]
    installed = _steps(build_plan(_ctx(tmp_path)))
    assert "metadata" not in installed and installed["train_fp16"].needs == ("dataset",)


def test_the_cuda_test_selection_collects_the_kernels_cuda_tests(gpu_plan):
    (command,) = _steps(gpu_plan)["kernel_tests"].commands
    selection = command[command.index("no:cacheprovider") + 1:-1]
    collected = _collected(selection)
    assert len(collected) >= 50 and all("cuda" in line for line in collected)
    assert any("gradcheck" in line for line in collected) and any("compile" in line for line in collected)
    assert any("bad_levels" in line for line in collected) and any("half_precision" in line for line in collected)


def test_the_reference_runs_the_parity_test_on_the_gpu(gpu_plan):
    reference = _steps(gpu_plan)["reference"]
    assert reference.env == {"SEGCORE_DEVCHECK_DEVICE": "cuda"}
    test_file = reference.commands[0][reference.commands[0].index("no:cacheprovider") + 1]
    assert os.path.isfile(os.path.join(REPO_ROOT, test_file))


@pytest.mark.parametrize("name,precision", [("train_fp16", "float16"), ("train_bf16", "bfloat16")])
def test_training_runs_are_train_net_command_lines_with_amp(gpu_plan, name, precision):
    step = _steps(gpu_plan)[name]
    (command,) = step.commands
    assert command[1] == "train_net.py" and step.env["DETECTRON2_DATASETS"].endswith("datasets")
    args = default_argument_parser().parse_args(command[2:])
    assert args.num_gpus == 1 and not args.eval_only
    cfg = setup_cfg(os.path.join(REPO_ROOT, args.config_file), args.opts)
    assert cfg.SOLVER.AMP.ENABLED and cfg.SOLVER.AMP.PRECISION == precision
    assert cfg.SOLVER.MAX_ITER == GPU_SIZES.train_iters >= 100 and cfg.TEST.EVAL_PERIOD == 0
    assert cfg.OUTPUT_DIR.endswith(f"train_{precision}") and cfg.DATASETS.TEST
    assert args.opts[args.opts.index("MODEL.DEVICE") + 1] == "cuda"


def test_the_checks_own_programs_accept_their_command_lines(gpu_plan):
    steps = _steps(gpu_plan)
    (command,) = steps["distributed"].commands
    args = distributed.build_parser().parse_args(command[3:])
    assert (args.device, args.backend) == ("cuda", "nccl")
    setup_cfg(os.path.join(REPO_ROOT, args.config_file), args.opts)
    (command,) = steps["bench_op"].commands
    args = op_benchmark.build_parser().parse_args(command[3:])
    assert (args.device, args.size, args.dtypes) == ("cuda", 1024, ["float32", "bfloat16"])


def test_the_benchmarks_use_only_options_tools_benchmark_has(gpu_plan):
    help_text = subprocess.run([sys.executable, os.path.join("tools", "benchmark.py"), "--help"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=300).stdout
    for step in gpu_plan.steps:
        if not step.name.startswith(("bench_infer", "bench_train")):
            continue
        (command,) = step.commands
        assert command[1] == os.path.join("tools", "benchmark.py")
        options = [arg for arg in command[2:] if arg.startswith("--")]
        assert all(option in help_text for option in options), (step.name, options)
        assert os.path.isfile(os.path.join(REPO_ROOT, command[command.index("--config-file") + 1]))
        assert command[command.index("--device") + 1] == "cuda"
        if step.name.startswith("bench_infer"):
            assert command[command.index("--input-size") + 1:][:2] == ["800", "1333"]
            assert "--compare" in command and ("--compile" in command) == ("compile" in step.name)


def test_the_generator_is_named_in_one_place():
    command = quickstart_generator_command("python", "/data", (4, 2, 64))
    assert command[2] in QUICKSTART_GENERATORS and command[3:] == ["--root", "/data", "--num-train", "4", "--num-val",
                                                                    "2", "--size", "64"]


def test_the_cpu_plan_builds_outside_the_checkout_and_runs_one_at_a_time(tmp_path):
    plan = build_plan(_ctx(tmp_path, cpu=True))
    steps = _steps(plan)
    assert "train_fp16" not in steps and "train_bf16" in steps and plan.parallel["checks"] == 1
    build_ext = steps["build"].commands[0]
    assert "--inplace" not in build_ext and build_ext[build_ext.index("--build-lib") + 1].startswith(str(tmp_path))
    assert steps["build"].env["FORCE_CUDA"] is None
    assert steps["reference"].env == {"SEGCORE_DEVCHECK_DEVICE": "cpu"}
    assert "gloo" in steps["distributed"].commands[0]
    assert "cuda" not in " ".join(steps["kernel_tests"].commands[0])
