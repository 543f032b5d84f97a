"""Run ``train_net.py``'s command line and SIGKILL the process right after it writes one checkpoint.

Usage (the tests run it in a subprocess)::

    SEGCORE_TEST_KILL_AFTER_CHECKPOINT=model_0000001 python tests/segcore/engine/train_net_killed.py \\
        --config-file CONFIG [--num-gpus N] KEY VALUE ...

The process that writes the checkpoint (the main process) kills itself with ``SIGKILL`` as soon as
``Checkpointer.save`` has written ``<name>.pth`` and tagged it in ``last_checkpoint``: nothing runs
after that (no ``after_train``, no cleanup), as when a job is killed by a scheduler. With
``--num-gpus N`` the spawned worker processes import this file too (as ``__mp_main__``), so the
patch is in place there; the other workers then fail at their next collective and ``launch``
ends them.
"""
import os
import signal
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from segcore.checkpoint import Checkpointer  # noqa: E402

#: the environment variable naming the checkpoint (without ".pth") after which to die
KILL_AFTER_ENV = "SEGCORE_TEST_KILL_AFTER_CHECKPOINT"

_original_save = Checkpointer.save


def _save_then_kill(self, name, **kwargs):
    _original_save(self, name, **kwargs)
    if self.save_to_disk and name == os.environ.get(KILL_AFTER_ENV):
        os.kill(os.getpid(), signal.SIGKILL)


Checkpointer.save = _save_then_kill

if __name__ == "__main__":
    import train_net

    train_net.cli(sys.argv[1:])
