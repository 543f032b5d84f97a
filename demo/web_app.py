"""The local web page of ``demo/app.py``: a model's segmentation in the browser.

Two layers, so that everything but the page itself is tested without a browser:

* :class:`WebDemo` (no Gradio): reads an upload with the reader of ``demo/demo.py``
  (:func:`segcore.data.detection_utils.read_image`), runs the model and draws through
  :class:`predictor.VisualizationDemo` (``DefaultPredictor`` and the ``Visualizer``, the drawing
  code of ``demo/demo.py``), keeps the last results so the output and the threshold can be changed
  without running the model again, makes the legend and the notes, and segments short videos.
* :func:`build_page` and :func:`launch`: the Gradio page over a :class:`WebDemo`.

Limits, each a module constant: images whose longer side exceeds :data:`MAX_IMAGE_SIDE` are
resized first (the page says so); :data:`MODEL_CONCURRENCY` model runs at a time (an image or a
video), the other requests wait in a queue of at most :data:`QUEUE_SIZE` (the page shows each its
place; more are refused with "queue is full"); videos are segmented up to
:data:`MAX_VIDEO_FRAMES` frames; uploads are limited to :data:`MAX_UPLOAD_SIZE`.
"""
import atexit
import html
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from predictor import DRAWABLE_OUTPUTS, LegendEntry, VisualizationDemo, compact_predictions
from segcore.data.detection_utils import ImageReadError, read_image
from segcore.utils.video import SUPPORTED_VIDEO_EXTENSIONS, get_video_info, open_video

__all__ = ["EXAMPLE_PHOTOS", "ImageResult", "MAX_IMAGE_SIDE", "MAX_UPLOAD_SIZE", "MAX_VIDEO_FRAMES",
           "MODEL_CONCURRENCY", "OUTPUT_LABELS", "QUEUE_SIZE", "RESULTS_KEPT", "VideoResult", "WebDemo",
           "build_page", "launch", "legend_html"]

logger = logging.getLogger("segcore.demo.web")

#: Longer side (pixels) above which an uploaded image is resized before it is segmented: the
#: largest test size of any config here (Cityscapes' 1024 x 2048), so a model loses no detail it
#: would use, while the page's memory stays bounded (semantic scores are classes x pixels floats).
MAX_IMAGE_SIDE = 2048
#: Frames of a video that are segmented; a longer video is cut there (the page says so).
MAX_VIDEO_FRAMES = 300
#: Largest upload the server accepts (Gradio's ``max_file_size``).
MAX_UPLOAD_SIZE = "200mb"
#: Model runs (image or video requests) at a time: one model in one process, whose operators
#: already use every core; a second run at once would only share them and double the memory.
MODEL_CONCURRENCY = 1
#: Requests that may wait for the model; more are refused (the page says the queue is full).
QUEUE_SIZE = 16
#: Redraws (another output or threshold: no model run) at a time.
REDRAW_CONCURRENCY = 2
#: Results kept for redrawing, the most recent ones (an older one must be uploaded again).
RESULTS_KEPT = 8
#: The example photographs offered on the page: ``skimage.data`` functions (bundled with
#: scikit-image, no download).
EXAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
#: How the page names each output of :data:`predictor.DRAWABLE_OUTPUTS`.
OUTPUT_LABELS = {"panoptic_seg": "panoptic", "instances": "instances", "sem_seg": "semantic"}
#: Video codec of the segmented videos: VP8 in WebM, which browsers play and OpenCV's wheels write
#: (they have no H.264 encoder, and browsers do not play the MPEG-4 part 2 of their .mp4 files).
_VIDEO_CODEC, _VIDEO_EXT = "VP80", ".webm"


@dataclass
class ImageResult:
    """One image's segmentation as the page shows it.

    Attributes:
        result_id: key of the kept result (:meth:`WebDemo.redraw`).
        name: the file name shown (the upload's own name, or the example's).
        input_rgb: (H, W, 3) uint8 RGB image the model saw (resized if it was too large).
        overlay_rgb: (H, W, 3) uint8 RGB drawing of ``kind``.
        kind: the output drawn (a key of :data:`OUTPUT_LABELS`).
        kinds: the drawable outputs the model returned, in :data:`predictor.DRAWABLE_OUTPUTS` order.
        legend: the legend rows of the drawing.
        threshold: the score threshold of the drawing.
        model_seconds: time of the model run (prediction only).
        draw_seconds: time of the drawing.
        notes: what the page should tell besides (e.g. that the image was resized).
    """

    result_id: str
    name: str
    input_rgb: np.ndarray
    overlay_rgb: np.ndarray
    kind: str
    kinds: List[str]
    legend: List[LegendEntry]
    threshold: float
    model_seconds: float
    draw_seconds: float
    notes: List[str] = field(default_factory=list)

    def summary(self) -> str:
        """The page's status line (Markdown): file, size, outputs, times and notes."""
        height, width = self.input_rgb.shape[:2]
        outputs = ", ".join(OUTPUT_LABELS[k] for k in self.kinds)
        lines = [f"**{_md(self.name)}**: {width}×{height} pixels; outputs: {outputs}; "
                 f"model {self.model_seconds:.2f} s, drawing {self.draw_seconds:.2f} s."]
        lines += [f"Note: {_md(note)}" for note in self.notes]
        return "\n\n".join(lines)


@dataclass
class VideoResult:
    """A segmented video.

    Attributes:
        path: the WebM file written.
        frames: frames segmented.
        seconds: time of the whole run (prediction and drawing).
        notes: what the page should tell besides (e.g. that the video was cut).
    """

    path: str
    frames: int
    seconds: float
    notes: List[str] = field(default_factory=list)

    def summary(self, name: str) -> str:
        """The page's status line (Markdown) for the video uploaded as ``name``."""
        lines = [f"**{_md(name)}**: {self.frames} frames segmented in {self.seconds:.1f} s "
                 f"({self.frames / max(self.seconds, 1e-9):.1f} frames/s)."]
        lines += [f"Note: {_md(note)}" for note in self.notes]
        return "\n\n".join(lines)


def _md(text: str) -> str:
    """``text`` safe to put in Markdown (no markup, no HTML)."""
    escaped = html.escape(str(text), quote=False)
    return "".join("\\" + c if c in "\\`*_[]<>#|" else c for c in escaped)


def _display_name(path: str, name: Optional[str]) -> str:
    return name or os.path.basename(path)


def _name_errors(error: Exception, path: str, name: str) -> str:
    """The message of ``error`` with the server's path of an upload replaced by its own name."""
    return str(error).replace(path, name)


class WebDemo:
    """What the page does, without the page: segment images and videos and keep the results.

    Args:
        demo: the :class:`predictor.VisualizationDemo` that predicts and draws (its
            ``confidence_threshold`` is the page's initial threshold).
        title: the page's title.
        description: a line (Markdown) under the title, e.g. the config and weights.
        work_dir: folder for the example photographs and the segmented videos (default: a new
            temporary folder, removed at exit).
        max_image_side, max_video_frames, results_kept, model_concurrency: see the module constants.
    """

    def __init__(self, demo: VisualizationDemo, *, title: str = "Segmentation demo", description: str = "",
                 work_dir: Optional[str] = None, max_image_side: int = MAX_IMAGE_SIDE,
                 max_video_frames: int = MAX_VIDEO_FRAMES, results_kept: int = RESULTS_KEPT,
                 model_concurrency: int = MODEL_CONCURRENCY):
        self.demo = demo
        self.title = title
        self.description = description
        if work_dir is None:
            work_dir = tempfile.mkdtemp(prefix="segcore_web_demo_")
            atexit.register(shutil.rmtree, work_dir, True)
        self.work_dir = work_dir
        self.max_image_side = int(max_image_side)
        self.max_video_frames = int(max_video_frames)
        self.results_kept = int(results_kept)
        self._results: "OrderedDict[str, Tuple[np.ndarray, dict, str]]" = OrderedDict()  # id -> image, output, name
        self._results_lock = threading.Lock()
        # the queue of the page runs MODEL_CONCURRENCY model requests at a time; this holds for any
        # other caller too (a script calling the page's API, the tests)
        self._model_slots = threading.BoundedSemaphore(model_concurrency)
        self._examples: Optional[List[str]] = None

    # ------------------------------------------------------------------ inputs
    def example_photos(self) -> List[str]:
        """PNG files of the example photographs (:data:`EXAMPLE_PHOTOS`), written once into ``work_dir``."""
        if self._examples is None:
            import skimage.data

            folder = os.path.join(self.work_dir, "examples")
            os.makedirs(folder, exist_ok=True)
            paths = []
            for name in EXAMPLE_PHOTOS:
                path = os.path.join(folder, f"{name}.png")
                if not os.path.isfile(path):
                    cv2.imwrite(path, cv2.cvtColor(getattr(skimage.data, name)(), cv2.COLOR_RGB2BGR))
                paths.append(path)
            self._examples = paths
        return list(self._examples)

    def read_image(self, path: str, name: Optional[str] = None) -> Tuple[np.ndarray, List[str]]:
        """Read an uploaded image as ``demo/demo.py`` does, resized if it is too large.

        Args:
            path: the file on the server.
            name: the name the user knows it by (default: the file name), used in messages.

        Returns:
            ((H, W, 3) uint8 BGR image, notes for the page).

        Raises:
            ImageReadError: the file is not an image this reader decodes (the message names ``name``).
            FileNotFoundError: the file is gone.
        """
        name = _display_name(path, name)
        try:
            image = read_image(path, format="BGR")
        except (ImageReadError, FileNotFoundError) as e:
            message = _name_errors(e, path, name)
            if os.path.splitext(name)[1].lower() in (*SUPPORTED_VIDEO_EXTENSIONS, _VIDEO_EXT):
                message += " (a video? upload it in the Video tab)"
            raise type(e)(message) from e
        height, width = image.shape[:2]
        notes = []
        if max(height, width) > self.max_image_side:
            scale = self.max_image_side / max(height, width)
            new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA)
            notes.append(f"the image is {width}×{height} pixels: it was resized to {new_size[0]}×{new_size[1]} "
                         f"(at most {self.max_image_side} pixels on the longer side) before segmenting.")
        return image, notes

    # ------------------------------------------------------------------ images
    def predict(self, image_bgr: np.ndarray) -> Tuple[dict, float]:
        """The model's output for ``image_bgr`` and the seconds the model took (one run at a time)."""
        with self._model_slots:
            start = time.perf_counter()
            predictions = self.demo.predictor(image_bgr)
            return predictions, time.perf_counter() - start

    def segment(self, path: str, name: Optional[str] = None, kind: Optional[str] = None,
                threshold: Optional[float] = None) -> ImageResult:
        """Read, segment and draw an uploaded image; keep the result for :meth:`redraw`.

        Args:
            path, name: as :meth:`read_image`.
            kind: the output to draw; None, or one the model does not return: the demo's choice
                (``demo/demo.py --draw auto``).
            threshold: the score threshold; None: the demo's.

        Raises:
            ImageReadError, FileNotFoundError: as :meth:`read_image`.
            KeyError: the model returned nothing drawable.
        """
        name = _display_name(path, name)
        image, notes = self.read_image(path, name)
        predictions, model_seconds = self.predict(image)
        compact = compact_predictions(predictions)
        del predictions  # the (K, H, W) scores are the largest thing here
        logger.info(f"{name}: {image.shape[1]}x{image.shape[0]} pixels, model {model_seconds:.2f}s")
        result_id = uuid.uuid4().hex
        with self._results_lock:
            self._results[result_id] = (image, compact, name)
            while len(self._results) > self.results_kept:
                self._results.popitem(last=False)
        return self._draw(result_id, image, compact, name, kind, threshold, model_seconds, notes)

    def redraw(self, result_id: str, kind: Optional[str] = None, threshold: Optional[float] = None) -> ImageResult:
        """Draw a kept result again with another output or threshold (no model run).

        Raises:
            KeyError: the result is no longer kept (only the last :data:`RESULTS_KEPT` are).
        """
        with self._results_lock:
            if result_id not in self._results:
                raise KeyError(f"this result is no longer kept (the page keeps the last {self.results_kept}): "
                               "upload the image again")
            image, compact, name = self._results[result_id]
            self._results.move_to_end(result_id)
        return self._draw(result_id, image, compact, name, kind, threshold, 0.0, [])

    def _draw(self, result_id: str, image: np.ndarray, compact: dict, name: str, kind: Optional[str],
              threshold: Optional[float], model_seconds: float, notes: List[str]) -> ImageResult:
        kinds = [k for k in DRAWABLE_OUTPUTS if k in compact]
        if kind not in kinds:
            kind = self.demo.output_to_draw(compact)
        threshold = self.demo.confidence_threshold if threshold is None else float(threshold)
        start = time.perf_counter()
        overlay = self.demo.visualize(image, compact, kind, confidence_threshold=threshold).get_image()
        legend = self.demo.legend(compact, kind, confidence_threshold=threshold)
        draw_seconds = time.perf_counter() - start
        return ImageResult(result_id=result_id, name=name, input_rgb=np.ascontiguousarray(image[:, :, ::-1]),
                           overlay_rgb=overlay, kind=kind, kinds=kinds, legend=legend, threshold=threshold,
                           model_seconds=model_seconds, draw_seconds=draw_seconds, notes=notes)

    # ------------------------------------------------------------------ videos
    def segment_video(self, path: str, name: Optional[str] = None, threshold: Optional[float] = None,
                      on_frame: Optional[Callable[[int, int], None]] = None) -> VideoResult:
        """Segment a video's frames (up to :data:`MAX_VIDEO_FRAMES`) into a WebM file the browser plays.

        Frames are drawn by :meth:`predictor.VisualizationDemo.run_on_video` (``demo/demo.py
        --video-input``'s drawing), each output the demo's choice.

        Args:
            path, name: the uploaded file and the name the user knows it by.
            threshold: the score threshold; None: the demo's.
            on_frame: called as ``on_frame(frames done, frames expected)`` after each frame.

        Raises:
            FileNotFoundError: the file is gone.
            OSError: not a video OpenCV decodes, no frame in it, or the output cannot be written.
            ValueError: frames larger than ``max_image_side`` (the message says what to do).
        """
        name = _display_name(path, name)
        try:
            cap = open_video(path)
        except (OSError, FileNotFoundError) as e:
            raise type(e)(_name_errors(e, path, name)) from e
        try:
            info = get_video_info(cap)
            if max(info.width, info.height) > self.max_image_side:
                raise ValueError(f"the frames of {name} are {info.width}×{info.height} pixels; this page segments "
                                 f"videos up to {self.max_image_side} pixels on the longer side: scale it down first "
                                 "(e.g. ffmpeg -i in.mp4 -vf scale=1280:-2 out.mp4)")
            expected = min(info.num_frames, self.max_video_frames) if info.num_frames else self.max_video_frames
            folder = os.path.join(self.work_dir, "videos")
            os.makedirs(folder, exist_ok=True)
            out_path = os.path.join(folder, f"{os.path.splitext(os.path.basename(name))[0]}_segmented_"
                                            f"{uuid.uuid4().hex[:8]}{_VIDEO_EXT}")
            writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*_VIDEO_CODEC), info.fps,
                                     (info.width, info.height), True)
            if not writer.isOpened():
                raise OSError(f"Cannot write the segmented video {out_path}: OpenCV has no {_VIDEO_CODEC} encoder here")
            frames = 0
            start = time.perf_counter()
            try:
                with self._model_slots:
                    for frame in self.demo.run_on_video(cap, confidence_threshold=threshold,
                                                        max_frames=self.max_video_frames):
                        writer.write(frame)
                        frames += 1
                        if on_frame is not None:
                            on_frame(frames, max(expected, frames))
            finally:
                writer.release()
            seconds = time.perf_counter() - start
        finally:
            cap.release()
        if frames == 0:
            raise OSError(f"Cannot read any frame of {name}: it is empty, or not a video OpenCV decodes")
        logger.info(f"{name}: {frames} frames in {seconds:.1f}s")
        notes = []
        if info.num_frames > self.max_video_frames:
            notes.append(f"the video has {info.num_frames} frames: the first {self.max_video_frames} were segmented.")
        return VideoResult(path=out_path, frames=frames, seconds=seconds, notes=notes)


# ---------------------------------------------------------------------- the page
def legend_html(rows: Sequence[LegendEntry]) -> str:
    """The legend as an HTML table: colour, class, share of the image's pixels, and scores when there are any."""
    if not rows:
        return "<p>Nothing drawn at this threshold: lower it to see less confident predictions.</p>"
    with_scores = any(row.score is not None for row in rows)
    head = "<tr><th></th><th>class</th><th>share</th>" + ("<th>score</th>" if with_scores else "") + "</tr>"
    body = []
    for row in rows:
        swatch = ""
        if row.color is not None:
            swatch = ('<span style="display:inline-block;width:1em;height:1em;border:1px solid #888;'
                      f'background:rgb{tuple(row.color)}"></span>')
        cells = [swatch, html.escape(row.name), f"{100 * row.share:.1f} %"]
        if with_scores:
            cells.append("" if row.score is None else f"{row.score:.2f}")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table class="segcore-legend"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _error(message: str) -> str:
    return f"**Error:** {_md(message)}"


def build_page(web: WebDemo):
    """The Gradio page (``gradio.Blocks``) over ``web``, its queue set (see the module's limits).

    Image tab: an upload, the example photographs, the output selector (the outputs the model
    returned), then side by side the input, the overlay and the legend; a status line with the
    model's time, notes and errors, and the score threshold. Video tab: an upload, its threshold and
    the segmented video, with a progress bar.
    """
    import gradio as gr

    initial_threshold = web.demo.confidence_threshold

    def image_outputs(result: ImageResult):
        choices = [(OUTPUT_LABELS[k], k) for k in result.kinds]
        return (result.input_rgb, result.overlay_rgb, legend_html(result.legend),
                gr.update(choices=choices, value=result.kind, visible=len(choices) > 1),
                result.summary(), result.result_id)

    def image_error(message: str):
        return None, None, "", gr.update(), _error(message), None

    def segment(path: Optional[str], name: Optional[str], kind: Optional[str], threshold: float):
        if not path:
            return None, None, "", gr.update(), "", None
        try:
            return image_outputs(web.segment(path, name, kind, threshold))
        except (ImageReadError, FileNotFoundError) as e:
            return image_error(str(e))
        except Exception as e:  # noqa: BLE001 - the page reports the model's failure; the log has the traceback
            logger.exception(f"Segmenting {name or path} failed")
            return image_error(f"the model failed on {name or os.path.basename(path)}: {type(e).__name__}: {e}")

    def on_upload(path: Optional[str], kind: Optional[str], threshold: float):
        return segment(path, None, kind, threshold)

    def on_example(kind: Optional[str], threshold: float, selected: gr.SelectData):  # Gradio passes the click
        path = web.example_photos()[selected.index]
        return segment(path, os.path.basename(path), kind, threshold)

    def on_redraw(result_id: Optional[str], kind: Optional[str], threshold: float):
        if not result_id:
            return gr.update(), gr.update(), gr.update()
        try:
            result = web.redraw(result_id, kind, threshold)
        except KeyError as e:
            return gr.update(), gr.update(), _error(e.args[0])
        return result.overlay_rgb, legend_html(result.legend), result.summary()

    def on_video(path: Optional[str], threshold: float, progress=gr.Progress()):
        if not path:
            return None, ""
        name = os.path.basename(path)
        progress(0, desc="segmenting frames")

        def on_frame(done: int, total: int) -> None:
            progress((done, total), desc="segmenting frames", unit="frames")

        try:
            result = web.segment_video(path, name, threshold, on_frame)
        except (OSError, ValueError) as e:
            return None, _error(str(e))
        except Exception as e:  # noqa: BLE001 - as in segment()
            logger.exception(f"Segmenting the video {name} failed")
            return None, _error(f"the model failed on {name}: {type(e).__name__}: {e}")
        return result.path, result.summary(name)

    threshold_help = ("instances and panoptic segments with a lower score, and semantic pixels with a lower "
                      "class probability, are not drawn")
    with gr.Blocks(title=web.title, analytics_enabled=False, delete_cache=(600, 3600)) as page:
        gr.Markdown(f"# {_md(web.title)}\n{web.description}")
        result_id = gr.State(None)
        with gr.Tab("Image"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=300):
                    upload = gr.File(label="Upload an image", height=110, elem_id="image-upload")
                    examples = gr.Gallery(value=web.example_photos(), label="... or pick an example photograph",
                                          columns=2, rows=2, height=300, allow_preview=False,
                                          object_fit="cover", elem_id="examples")
                    output_kind = gr.Radio(choices=[], label="Output", visible=False, elem_id="output-kind")
                    threshold = gr.Slider(0.0, 1.0, value=initial_threshold, step=0.05, label="Score threshold",
                                          info=threshold_help, elem_id="threshold")
                    status = gr.Markdown("Upload an image or pick an example.", elem_id="status")
                input_view = gr.Image(label="Input", format="png", interactive=False, scale=2, elem_id="input-image")
                overlay = gr.Image(label="Segmentation", format="png", interactive=False, scale=2, elem_id="overlay")
                with gr.Column(scale=1, min_width=220):
                    gr.Markdown("**Classes drawn** (share of the image's pixels)")
                    legend = gr.HTML(elem_id="legend")
        with gr.Tab("Video"):
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=300):
                    video_upload = gr.File(label="Upload a short video (mp4, avi, mov, mkv, webm)", height=110,
                                           elem_id="video-upload")
                    video_threshold = gr.Slider(0.0, 1.0, value=initial_threshold, step=0.05, label="Score threshold",
                                                info=threshold_help, elem_id="video-threshold")
                    video_status = gr.Markdown(elem_id="video-status")
                video_output = gr.Video(label=f"Segmented (WebM, at most {web.max_video_frames} frames)",
                                        interactive=False, scale=3, elem_id="video-output")

        image_out = [input_view, overlay, legend, output_kind, status, result_id]
        model_run = dict(concurrency_id="model", concurrency_limit=MODEL_CONCURRENCY)
        upload.upload(on_upload, [upload, output_kind, threshold], image_out, api_name="segment", **model_run)
        upload.clear(lambda: (None, None, "", gr.update(choices=[], visible=False), "", None), None, image_out,
                     api_visibility="private")
        examples.select(on_example, [output_kind, threshold], image_out, api_visibility="private", **model_run)
        redraw = dict(concurrency_id="redraw", concurrency_limit=REDRAW_CONCURRENCY, api_visibility="private")
        output_kind.input(on_redraw, [result_id, output_kind, threshold], [overlay, legend, status], **redraw)
        threshold.release(on_redraw, [result_id, output_kind, threshold], [overlay, legend, status], **redraw)
        video_upload.upload(on_video, [video_upload, video_threshold], [video_output, video_status],
                            api_name="segment_video", **model_run)
    page.queue(max_size=QUEUE_SIZE, default_concurrency_limit=MODEL_CONCURRENCY)
    return page


def launch(page, *, host: str, port: int, share: bool = False, block: bool = True) -> str:
    """Serve ``page`` at ``http://host:port``, print where, and return that address.

    Args:
        share: also open Gradio's public share link (off by default: see docs/web_demo.md).
        block: serve until interrupted (Ctrl-C); False returns once the page is served, the
            server running in a thread (``page.close()`` stops it).
    """
    page.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True,
                max_file_size=MAX_UPLOAD_SIZE, ssr_mode=False, mcp_server=False, footer_links=["api", "gradio"],
                quiet=True)
    url = page.local_url
    print(f"Serving the segmentation page at {url}" + (f" and {page.share_url}" if share and page.share_url else "")
          + (" (Ctrl-C stops it)" if block else ""), flush=True)
    if block:
        page.block_thread()
    return url
