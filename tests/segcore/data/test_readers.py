"""Image / label readers and size checks (segcore.data.detection_utils)."""
import numpy as np
import pytest
from PIL import Image

from segcore.data import detection_utils as utils


@pytest.fixture
def rgb_png(tmp_path):
    rng = np.random.RandomState(0)
    arr = rng.randint(0, 256, size=(5, 7, 3), dtype=np.uint8)
    path = str(tmp_path / "img.png")
    Image.fromarray(arr).save(path)
    return path, arr


def test_read_image_formats(rgb_png):
    path, arr = rgb_png
    rgb = utils.read_image(path, format="RGB")
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, arr)
    np.testing.assert_array_equal(utils.read_image(path, format="BGR"), arr[:, :, ::-1])
    gray = utils.read_image(path, format="L")
    assert gray.shape == (5, 7, 1) and gray.dtype == np.uint8
    np.testing.assert_array_equal(gray[:, :, 0], np.asarray(Image.fromarray(arr).convert("L")))
    np.testing.assert_array_equal(utils.read_image(path), arr)
    with pytest.raises(ValueError, match="HSV"):
        utils.read_image(path, format="HSV")


def test_read_image_applies_exif_orientation(tmp_path):
    arr = np.zeros((2, 3, 3), np.uint8)
    arr[0, 0] = 255  # a white top-left pixel
    image = Image.fromarray(arr)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = str(tmp_path / "rot.jpg")
    image.save(path, exif=exif, quality=100)
    out = utils.read_image(path, format="RGB")
    assert out.shape == (3, 2, 3)  # transposed to display orientation
    assert out[0, -1].mean() > 200  # the white pixel now sits top-right


def test_read_image_missing_and_corrupt_files_are_named(tmp_path):
    missing = str(tmp_path / "missing.jpg")
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        utils.read_image(missing, format="RGB")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"this is not an image")
    with pytest.raises(utils.ImageReadError, match="corrupt.jpg"):
        utils.read_image(str(corrupt), format="RGB")
    # a truncated PNG: valid header, data cut off
    good = tmp_path / "good.png"
    Image.fromarray(np.random.RandomState(1).randint(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(utils.ImageReadError, match="truncated.png"):
        utils.read_image(str(truncated), format="BGR")


def test_read_sem_seg_dtypes_and_errors(tmp_path):
    labels8 = np.array([[0, 1], [255, 3]], np.uint8)
    p8 = str(tmp_path / "l8.png")
    Image.fromarray(labels8).save(p8)
    out = utils.read_sem_seg(p8)
    assert out.dtype == np.uint8 and out.shape == (2, 2)
    np.testing.assert_array_equal(out, labels8)

    labels16 = np.array([[0, 700], [65535, 3]], np.uint16)
    p16 = str(tmp_path / "l16.png")
    Image.fromarray(labels16).save(p16)
    out16 = utils.read_sem_seg(p16)
    assert out16.ndim == 2
    np.testing.assert_array_equal(out16.astype(np.int64), labels16.astype(np.int64))

    p_rgb = str(tmp_path / "color.png")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(p_rgb)
    with pytest.raises(ValueError, match="color.png"):
        utils.read_sem_seg(p_rgb)


def test_check_image_size():
    image = np.zeros((4, 6, 3), np.uint8)
    d = {"file_name": "x.jpg"}
    utils.check_image_size(d, image)
    assert d["width"] == 6 and d["height"] == 4
    with pytest.raises(utils.SizeMismatchError, match="bad.jpg"):
        utils.check_image_size({"file_name": "bad.jpg", "width": 6, "height": 5}, image)


def test_check_sem_seg_size_names_both_files():
    image = np.zeros((4, 6, 3), np.uint8)
    utils.check_sem_seg_size(image, np.zeros((4, 6)), "i.jpg", "s.png")
    with pytest.raises(utils.SizeMismatchError) as e:
        utils.check_sem_seg_size(image, np.zeros((4, 5)), "i.jpg", "s.png")
    assert "i.jpg" in str(e.value) and "s.png" in str(e.value)
