"""Training engine: command line, setup, launch, trainers with hooks, predictor."""
from . import hooks
from .cli import USER_ERRORS, run_cli
from .compile import compile_model
from .defaults import (
    DefaultPredictor,
    DefaultTrainer,
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
    setup_cfg,
)
from .launch import launch
from .train_loop import AMPTrainer, HookBase, SimpleTrainer, TrainerBase
from .weights import load_inference_weights

__all__ = ["USER_ERRORS", "AMPTrainer", "DefaultPredictor", "DefaultTrainer", "HookBase", "SimpleTrainer", "TrainerBase",
           "compile_model", "create_ddp_model", "default_argument_parser", "default_setup", "default_writers", "hooks", "launch",
           "load_inference_weights", "run_cli", "setup_cfg"]
