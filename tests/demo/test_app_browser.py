"""demo/app.py in a real browser: headless Chromium driven by Selenium through ChromeDriver.

The app is started the way a user starts it (``app.main`` with a command line, on a free local
port), with the test-only ``StubConvSegmentor`` (tests/stub_meta_arch.py) and metadata naming its
four classes. The browser uploads an image and waits for the result; the overlay the page shows
must equal, pixel for pixel, the picture ``demo/demo.py`` draws for the same image and model (the
page serves its drawings as PNG: nothing is lost), and again after the threshold is changed on the
page. An upload that is no image must show the error; an example photograph, a video and four
requests at once (through the page's API) must all be answered.

Needs Debian's ``chromium`` and ``chromium-driver`` (/usr/bin/chromium, /usr/bin/chromedriver;
``apt-get install chromium chromium-driver``) and the Python packages of the ``test`` extra
(selenium, gradio). Without them the tests are skipped, except where ``SEGCORE_REQUIRE_BROWSER=1``
(set by .ci/run, which installs the browser): there they fail.

``SEGCORE_UPDATE_SCREENSHOT=1`` also writes the page's screenshot to docs/images/web_demo.png.
"""
import base64
import os
import shutil
import sys
import tempfile

import cv2
import numpy as np
import pytest

from tests.e2e_utils import load_script
from tests.paths import REPO_ROOT

#: set to 1 where the browser must be there (CI): a missing browser fails instead of skipping
REQUIRE_BROWSER_ENV = "SEGCORE_REQUIRE_BROWSER"
#: set to 1 to write the page's screenshot to SCREENSHOT
UPDATE_SCREENSHOT_ENV = "SEGCORE_UPDATE_SCREENSHOT"
SCREENSHOT = os.path.join(REPO_ROOT, "docs", "images", "web_demo.png")
#: Debian's Chromium and its ChromeDriver (packages chromium, chromium-driver)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: flags Chromium needs here: no sandbox as root, no GPU, no network of its own
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000")
#: seconds to wait for the page to answer (the model, the upload, a cold start on a busy CI machine)
WAIT_S = 90
METADATA_NAME = "segcore_web_demo_test"
STUB_CLASSES = ["sky", "grass", "brick", "sand"]
STUB_COLORS = [[70, 130, 180], [84, 150, 52], [176, 82, 62], [220, 190, 120]]


def _missing() -> str:
    """Why the browser test cannot run here ('' when it can)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        return f"{' and '.join(missing)} missing (apt-get install chromium chromium-driver)"
    for module in ("selenium", "gradio"):
        try:
            __import__(module)
        except ImportError as e:
            return f"Python package {module} missing ({e}): pip install -e \".[test]\""
    return ""


@pytest.fixture(scope="module")
def browser_available():
    reason = _missing()
    if reason:
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{REQUIRE_BROWSER_ENV}=1 but the browser test cannot run: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def stub_app(browser_available, tmp_path_factory):
    """The app serving the stub model on a free port: (url, config file, config overrides)."""
    from segcore.data import MetadataCatalog
    from tests.stub_meta_arch import write_stub_config

    MetadataCatalog.get(METADATA_NAME).set(stuff_classes=STUB_CLASSES, stuff_colors=STUB_COLORS)
    config = write_stub_config(tmp_path_factory.mktemp("web_demo"), num_classes=len(STUB_CLASSES), min_size_test=64)
    opts = ["DATASETS.TEST", f"('{METADATA_NAME}',)"]
    app = load_script("segcore_web_app_browser", "demo/app.py")
    page, url = app.main(["--config-file", config, "--port", "0", "--opts", *opts], block=False)
    try:
        yield url, config, opts
    finally:
        page.close()


@pytest.fixture(scope="module")
def driver(browser_available):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="segcore_chromium_")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(driver, url):
    from selenium.webdriver.common.by import By

    driver.get(url)
    _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#image-upload input[type=file]"), "the page did not load")


def _upload(driver, selector, path):
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"{selector} input[type=file]").send_keys(path)


def _wait_for_text(driver, element_id, *texts):
    """Wait until the element's text holds every one of ``texts``; return the text."""
    from selenium.webdriver.common.by import By

    def shown(d):
        text = d.find_element(By.ID, element_id).text
        return text if all(t in text for t in texts) else False

    return _wait(driver, shown, f"#{element_id} never showed {texts}")


def _wait(driver, condition, message: str = ""):
    """Wait (at most :data:`WAIT_S`) until ``condition(driver)`` is truthy and return it; an element
    the page re-rendered meanwhile (stale) or has not rendered yet means: not yet."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                         ).until(condition, message)


def _shown_image(driver, element_id) -> np.ndarray:
    """The picture the page shows in the image component ``element_id``, as the browser fetches it (BGR)."""
    from selenium.webdriver.common.by import By

    def fetch(d):
        img = d.find_element(By.CSS_SELECTOR, f"#{element_id} img")
        if not d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img):
            return None
        data = d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0].src).then(r => r.arrayBuffer()).then(b => {"
            "  let s = ''; const a = new Uint8Array(b);"
            "  for (let i = 0; i < a.length; i += 8192) s += String.fromCharCode.apply(null, a.subarray(i, i + 8192));"
            "  done(btoa(s)); }).catch(e => done('error: ' + e));", img)
        assert not data.startswith("error"), data
        shown = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        natural = d.execute_script("return [arguments[0].naturalHeight, arguments[0].naturalWidth]", img)
        assert list(shown.shape[:2]) == natural  # what the browser decoded
        return [shown]  # truthy for the wait

    return _wait(driver, fetch, f"#{element_id} shows no image")[0]


def _test_photo(path) -> str:
    """A photograph (scikit-image's cat), small: the page's upload and demo/demo.py's input."""
    import skimage.data

    photo = cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), cv2.resize(photo, (300, 200), interpolation=cv2.INTER_AREA))
    return str(path)


def _set_threshold(driver, element_id, value: float) -> None:
    """Type ``value`` into the slider's number box, as a user does, and leave it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f"#{element_id} input[type=number]")
    box.clear()
    box.send_keys(str(value), Keys.ENTER, Keys.TAB)


def _set_threshold_until(driver, element_id, value: float, redrawn, attempts: int = 4) -> None:
    """:func:`_set_threshold`, typed again while the page has not redrawn (``redrawn(driver)``): on a
    loaded machine the number box can be re-rendered under the typing, which loses the value."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    for _ in range(attempts):
        _set_threshold(driver, element_id, value)
        try:
            WebDriverWait(driver, WAIT_S / attempts,
                          ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(redrawn)
            return
        except TimeoutException:
            continue
    raise TimeoutException(f"no redraw at threshold {value} after typing it {attempts} times")


def test_the_page_shows_the_drawing_of_demo_py(stub_app, driver, tmp_path):
    from selenium.webdriver.common.by import By

    url, config, opts = stub_app
    photo = _test_photo(tmp_path / "cat.png")
    reference = str(tmp_path / "demo_py" / "cat.png")
    demo_cli = load_script("segcore_demo_cli_for_app", "demo/demo.py")
    demo_cli.main(["--config-file", config, "--input", photo, "--output", reference, "--opts", *opts])

    _open(driver, url)
    _upload(driver, "#image-upload", photo)
    status = _wait_for_text(driver, "status", "cat.png", "300×200 pixels", "model")
    assert "Error" not in status
    np.testing.assert_array_equal(_shown_image(driver, "overlay"), cv2.imread(reference))
    np.testing.assert_array_equal(_shown_image(driver, "input-image"), cv2.imread(photo))
    legend = _wait_for_text(driver, "legend", "share")
    assert any(name in legend for name in STUB_CLASSES)
    if os.environ.get(UPDATE_SCREENSHOT_ENV) == "1":
        _write_screenshot(driver)

    # another threshold: the page redraws the kept result as demo.py draws with that threshold
    strict = str(tmp_path / "demo_py_0.9" / "cat.png")
    demo_cli.main(["--config-file", config, "--input", photo, "--output", strict, "--confidence-threshold", "0.9",
                   "--opts", *opts])
    _set_threshold_until(driver, "threshold", 0.9, lambda d: d.find_element(By.ID, "legend").text != legend)
    _wait(driver, lambda d: np.array_equal(_shown_image(d, "overlay"), cv2.imread(strict)),
          "the overlay at threshold 0.9 is not demo.py's")


def test_an_example_photograph_is_segmented_when_picked(stub_app, driver):
    from selenium.webdriver.common.by import By

    _open(driver, stub_app[0])
    _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#examples img")).click()
    _wait_for_text(driver, "status", "astronaut.png", "512×512 pixels")
    assert _shown_image(driver, "overlay").shape == (512, 512, 3)


def test_an_upload_that_is_no_image_shows_the_error(stub_app, driver, tmp_path):
    url = stub_app[0]
    bad = tmp_path / "notes.txt"
    bad.write_text("these are notes, not an image")
    _open(driver, url)
    _upload(driver, "#image-upload", str(bad))
    status = _wait_for_text(driver, "status", "Error", "notes.txt", "corrupt or not an image")
    assert tempfile.gettempdir() not in status  # the user's file name, not the server's path


def test_a_video_comes_back_playable(stub_app, driver, tmp_path):
    from selenium.webdriver.common.by import By

    from segcore.utils.video import VideoWriter

    url = stub_app[0]
    clip = str(tmp_path / "clip.mp4")
    with VideoWriter(clip, 8.0, (64, 48)) as writer:
        for i in range(6):
            frame = np.full((48, 64, 3), 90, np.uint8)
            frame[:, : 10 * (i + 1)] = (20, 180, 240)
            writer.write(frame)
    _open(driver, url)
    driver.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='Video']").click()
    _upload(driver, "#video-upload", clip)
    _wait_for_text(driver, "video-status", "clip.mp4", "6 frames segmented")
    # Chromium decoded the segmented video's header: it plays
    _wait(driver, lambda d: d.execute_script("return arguments[0].readyState >= 1 && arguments[0].videoWidth === 64",
                                             d.find_element(By.CSS_SELECTOR, "#video-output video")),
          "the segmented video does not load in the browser")


def test_concurrent_requests_are_queued_and_all_answered(stub_app, tmp_path):
    from gradio_client import Client, handle_file

    url = stub_app[0]
    photo = cv2.imread(_test_photo(tmp_path / "cat.png"))
    names = []
    for i in range(4):  # four different images, sent at once
        names.append(f"cat{i}.png")
        cv2.imwrite(str(tmp_path / names[-1]), photo[: 200 - 10 * i])
    client = Client(url, verbose=False, download_files=False)
    jobs = [client.submit(handle_file(str(tmp_path / name)), None, 0.5, api_name="/segment") for name in names]
    for name, job in zip(names, jobs):
        status = job.result(timeout=WAIT_S)[4]
        assert name in status and "Error" not in status


def _write_screenshot(driver) -> None:
    """Write the page's screenshot, small (a 256-colour PNG), to :data:`SCREENSHOT`."""
    from PIL import Image

    driver.execute_script("window.scrollTo(0, 0)")
    raw = os.path.join(tempfile.mkdtemp(prefix="segcore_screenshot_"), "page.png")
    driver.save_screenshot(raw)
    with Image.open(raw) as shot:
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        small.save(SCREENSHOT, optimize=True)
    print(f"wrote {SCREENSHOT} ({os.path.getsize(SCREENSHOT) // 1024} KiB)", file=sys.stderr)
