#!/usr/bin/env python
"""A local web page showing a model's segmentation: upload an image or a short video, see the result.

::

    python demo/app.py --quickstart                 # the model tools/quickstart.py trained
    python demo/app.py --config-file configs/ade20k-150/maskformer_R50_bs16_160k.yaml \\
        --opts MODEL.WEIGHTS model_final.pkl
    python demo/app.py --config-file CONFIG --host 0.0.0.0 --port 8080 --opts MODEL.WEIGHTS model.pth

then open the address it prints (default http://127.0.0.1:7860). The page (demo/web_app.py, Gradio:
``pip install -e ".[app]"``) draws with the ``DefaultPredictor`` and visualizer of ``demo/demo.py``.
The model is loaded and run once on an example photograph before the page is served: a config,
weight file or model that fails stops here with one line saying why, and no page is served.
See docs/web_demo.md (a remote machine, ``--share``).
"""
import argparse
import importlib.util
import logging
import os
import socket
import sys
import time
from typing import List, Optional, Tuple

_DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_DEMO_DIR)
for _path in (_ROOT, _DEMO_DIR):  # the repository root, and predictor.py / web_app.py
    if _path not in sys.path:
        sys.path.insert(0, _path)

from segcore.engine import run_cli  # noqa: E402

logger = logging.getLogger("segcore.demo.app")

#: the quickstart whose model ``--quickstart`` serves: tools/quickstart.py's default
QUICKSTART = ("maskformer", "semantic")
#: where the quickstart writes its final weights, inside its output folder
QUICKSTART_WEIGHTS = "model_final.pth"


class AppStartError(RuntimeError):
    """The page cannot start (the model fails on a test image, Gradio is missing); the message says why."""


def get_parser() -> argparse.ArgumentParser:
    """The app's command line."""
    parser = argparse.ArgumentParser(description="Serve a local web page showing a model's segmentation.")
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--config-file", metavar="FILE", help="the model's config file")
    model.add_argument("--quickstart", action="store_true",
                       help="serve the model that `python tools/quickstart.py` trained (its config and "
                            "output/quickstart/model_final.pth)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every "
                             "network interface, see docs/web_demo.md)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860; 0: any free port)")
    parser.add_argument("--share", action="store_true",
                        help="also open a public gradio.live link to the page (off by default: anyone with the "
                             "link can use the page; see docs/web_demo.md)")
    parser.add_argument("--confidence-threshold", type=float, default=0.5,
                        help="the page's initial score threshold (as demo/demo.py's option)")
    parser.add_argument("--opts", default=[], nargs=argparse.REMAINDER, metavar="KEY VALUE",
                        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pkl")
    return parser


def quickstart_model(roots: Optional[List[str]] = None) -> Tuple[str, str]:
    """(config file, weights) of the model ``tools/quickstart.py`` trains by default.

    Its output folder (``output/quickstart``) is relative to where the quickstart ran: it is looked
    for in each of ``roots``, by default the current folder, then the repository root.

    Raises:
        FileNotFoundError: no trained model (the message says to run the quickstart first).
    """
    from segcore.quickstart.runs import quickstart_config

    config, output_dir = quickstart_config(*QUICKSTART)
    looked_at = []
    for root in dict.fromkeys(os.path.abspath(r) for r in (roots or [os.getcwd(), _ROOT])):
        weights = os.path.join(root, output_dir, QUICKSTART_WEIGHTS)
        if os.path.isfile(weights):
            return config, weights
        looked_at.append(weights)
    raise FileNotFoundError(f"no quickstart model to serve ({' or '.join(looked_at)}: not found): train it first "
                            "with `python tools/quickstart.py` (minutes on a CPU), then run "
                            "`python demo/app.py --quickstart` again")


def check_port_free(host: str, port: int) -> int:
    """``port`` if a server can listen on ``host:port``, or a free port when ``port`` is 0.

    Raises:
        OSError: the address is in use or cannot be used (the message names it).
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as e:
            raise OSError(f"cannot serve on {host}:{port} ({e.strerror or e}): the port is in use or the address is "
                          "not this machine's; choose another with --port / --host") from e
        return sock.getsockname()[1]


def main(argv: Optional[List[str]] = None, *, block: bool = True):
    """Run the app with command-line arguments ``argv`` (default ``sys.argv[1:]``).

    Args:
        block: serve until interrupted; False returns ``(page, url)`` with the server running in a
            thread (the tests; ``page.close()`` stops it).

    Raises:
        SystemExit: an invalid command line (status 2).
        One of :data:`segcore.engine.USER_ERRORS` (config, weights, missing quickstart model) or
        :class:`AppStartError`: the model cannot be served; the command reports either in one line
        (``app.py: error: ...``, exit status 1) and serves no page.
    """
    parser = get_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.confidence_threshold <= 1.0:
        parser.error(f"--confidence-threshold must be in [0, 1], got {args.confidence_threshold}")
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be in 0..65535, got {args.port}")
    try:
        port = check_port_free(args.host, args.port)
    except OSError as e:
        parser.error(str(e))
    if importlib.util.find_spec("gradio") is None:
        raise AppStartError("the web page needs Gradio, which is not installed: "
                            "pip install --no-build-isolation -e \".[app]\"")

    import web_app
    from predictor import VisualizationDemo
    from segcore.engine import setup_cfg
    from segcore.utils.logger import setup_logger

    for name in ("fvcore", "segcore"):  # as demo/demo.py: one console handler each
        setup_logger(name=name)
    if args.quickstart:
        config_file, weights = quickstart_model()
        opts = ["MODEL.WEIGHTS", weights, *args.opts]
    else:
        config_file, opts = args.config_file, list(args.opts)
    cfg = setup_cfg(config_file, opts)
    logger.info(f"Loading the model of {config_file}")
    demo = VisualizationDemo(cfg, confidence_threshold=args.confidence_threshold)
    description = (f"Model: `{_shown_path(config_file)}`, weights `{_shown_path(cfg.MODEL.WEIGHTS) or 'none'}`, "
                   f"on {cfg.MODEL.DEVICE}.")
    web = web_app.WebDemo(demo, title="Segmentation demo", description=description)
    warm_up(web)
    page = web_app.build_page(web)
    url = web_app.launch(page, host=args.host, port=port, share=args.share, block=block)
    return page, url


def warm_up(web) -> None:
    """Run the model once on the first example photograph, so a model that loads but cannot run
    stops the app before the page is served.

    Raises:
        AppStartError: the model failed (the log has the traceback).
    """
    path = web.example_photos()[0]
    start = time.perf_counter()
    try:
        result = web.segment(path, os.path.basename(path))
    except Exception as e:  # noqa: BLE001 - any failure of the model means no page; the log keeps the traceback
        logger.exception("The model failed on a test image")
        raise AppStartError(f"the model failed on a test image ({os.path.basename(path)}), so no page is served: "
                            f"{type(e).__name__}: {e}") from e
    logger.info(f"The model runs: {', '.join(result.kinds)} in {time.perf_counter() - start:.2f}s on a test image")


def _shown_path(path: str) -> str:
    """How the page names a file: relative to the current folder when inside it, else its file name
    (the page may be seen from other machines; the log has the full path)."""
    if not path or "://" in path:
        return path
    rel = os.path.relpath(os.path.abspath(path))
    return os.path.basename(path) if rel.startswith("..") else rel


if __name__ == "__main__":
    try:
        run_cli(main, prog="app.py")  # a user's mistake (config, weights, no quickstart model): one line, status 1
    except AppStartError as e:
        print(f"app.py: error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
