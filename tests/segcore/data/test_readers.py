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


# ------------------------------------------------------------------ modes, EXIF, writability
def _save(tmp_path, name, image: Image.Image, **kwargs) -> str:
    path = str(tmp_path / name)
    image.save(path, **kwargs)
    return path


def test_read_image_returns_writable_arrays(rgb_png):
    import warnings

    import torch

    path, _ = rgb_png
    for fmt in ("RGB", "BGR", "L", None):
        arr = utils.read_image(path, format=fmt)
        assert arr.flags.writeable, fmt
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch warns on non-writable arrays
            torch.from_numpy(np.ascontiguousarray(arr))


def test_read_image_converts_modes_to_the_requested_format(tmp_path):
    rng = np.random.RandomState(3)
    rgb = rng.randint(0, 256, (4, 6, 3), dtype=np.uint8)
    gray = rgb[..., 0]
    # grayscale -> RGB: the grey value in every channel
    out = utils.read_image(_save(tmp_path, "gray.png", Image.fromarray(gray)), "RGB")
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))
    # RGBA -> RGB: alpha dropped (as Detectron2)
    rgba = np.dstack([rgb, np.full((4, 6), 7, np.uint8)])
    np.testing.assert_array_equal(utils.read_image(_save(tmp_path, "rgba.png", Image.fromarray(rgba)), "RGB"), rgb)
    # palette -> RGB: the palette's colours; BGR reverses them
    pal = Image.fromarray(rgb).quantize(colors=8)
    expected = np.asarray(pal.convert("RGB"))
    path = _save(tmp_path, "pal.png", pal)
    np.testing.assert_array_equal(utils.read_image(path, "RGB"), expected)
    np.testing.assert_array_equal(utils.read_image(path, "BGR"), expected[:, :, ::-1])
    # 16-bit grayscale -> 8 bits by the high byte (as OpenCV), not saturated at 255 (as PIL's convert)
    g16 = np.array([[0, 255, 256, 700], [30000, 65535, 1, 40000]], np.uint16)
    path16 = _save(tmp_path, "g16.png", Image.fromarray(g16))
    assert Image.open(path16).mode.startswith("I;16")
    expected8 = (g16 >> 8).astype(np.uint8)
    np.testing.assert_array_equal(utils.read_image(path16, "RGB"), np.repeat(expected8[..., None], 3, axis=2))
    np.testing.assert_array_equal(utils.read_image(path16, "L")[..., 0], expected8)
    np.testing.assert_array_equal(utils.read_image(path16), g16)  # format None keeps the file's values
    # CMYK JPEG -> 3-channel uint8
    cmyk = utils.read_image(_save(tmp_path, "cmyk.jpg", Image.fromarray(rgb).convert("CMYK")), "BGR")
    assert cmyk.shape == (4, 6, 3) and cmyk.dtype == np.uint8
    # bilevel -> 0 / 255; a 1x1 image stays 1x1
    bits = utils.read_image(_save(tmp_path, "bits.png", Image.fromarray(gray > 128)), "RGB")
    np.testing.assert_array_equal(bits[..., 0], np.where(gray > 128, 255, 0))
    one = utils.read_image(_save(tmp_path, "one.png", Image.fromarray(rgb[:1, :1])), "RGB")
    assert one.shape == (1, 1, 3) and (one == rgb[:1, :1]).all()


def _exif_reference(arr: np.ndarray, orientation: int) -> np.ndarray:
    """The upright image of the EXIF specification (tag 0x0112), written with numpy."""
    return {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],  # mirrored horizontally
        3: lambda a: a[::-1, ::-1],  # rotated 180
        4: lambda a: a[::-1],  # mirrored vertically
        5: lambda a: a.swapaxes(0, 1),  # mirrored horizontally, rotated 270 CW: the transpose
        6: lambda a: np.rot90(a, -1),  # rotated 90 CW
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),  # mirrored horizontally, rotated 90 CW: the anti-transpose
        8: lambda a: np.rot90(a, 1),  # rotated 270 CW
    }[orientation](arr)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_read_image_applies_every_exif_orientation(tmp_path, orientation, ext):
    # a grey 2x3 block pattern that no flip or rotation leaves unchanged; blocks survive JPEG
    blocks = np.array([[0, 1, 2], [3, 4, 5]]) * 40
    arr = np.kron(blocks, np.ones((16, 16), int)).astype(np.uint8)
    image = Image.fromarray(arr)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = _save(tmp_path, f"o{orientation}.{ext}", image, exif=exif, **({"quality": 100} if ext == "jpg" else {}))
    expected = _exif_reference(arr, orientation).astype(int)
    tolerance = 0 if ext == "png" else 8  # JPEG noise
    rgb = utils.read_image(path, "RGB")
    assert rgb.shape == expected.shape + (3,)
    assert np.abs(rgb.astype(int) - expected[..., None]).max() <= tolerance
    gray = utils.read_image(path, "L")
    assert gray.shape == expected.shape + (1,) and np.abs(gray[..., 0].astype(int) - expected).max() <= tolerance
    # label maps are turned the same way (as Detectron2, which reads them with read_image)
    labels = utils.read_sem_seg(path)
    assert labels.shape == expected.shape and np.abs(labels.astype(int) - expected).max() <= tolerance


def test_corrupt_exif_is_ignored_and_corrupt_pixels_are_named(tmp_path, monkeypatch):
    arr = np.random.RandomState(0).randint(0, 256, (4, 5, 3), dtype=np.uint8)
    path = _save(tmp_path, "badexif.png", Image.fromarray(arr), exif=b"Exif\x00\x00garbage!!")
    np.testing.assert_array_equal(utils.read_image(path, "RGB"), arr)  # the pixels are fine
    # a header declaring more pixels than PIL allows (a decompression bomb) is an error naming the file
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4)
    with pytest.raises(utils.ImageReadError, match="badexif.png"):
        utils.read_image(path, "RGB")
    monkeypatch.undo()
    with pytest.raises(utils.ImageReadError, match="directory"):
        utils.read_image(str(tmp_path), "RGB")


def test_read_sem_seg_palette_bilevel_and_big_endian(tmp_path):
    labels = np.array([[0, 1, 2], [7, 255, 3]], np.uint8)
    pal = Image.fromarray(labels, "P")
    pal.putpalette(list(np.random.RandomState(0).randint(0, 256, 768)))
    out = utils.read_sem_seg(_save(tmp_path, "pal.png", pal))
    np.testing.assert_array_equal(out, labels)  # the indices, not the colours
    bits = utils.read_sem_seg(_save(tmp_path, "bits.png", Image.fromarray(labels > 2)))
    assert bits.dtype == np.uint8
    np.testing.assert_array_equal(bits, (labels > 2).astype(np.uint8))
    big = Image.frombytes("I;16B", (2, 1), np.array([1, 700], ">u2").tobytes())
    out16 = utils.read_sem_seg(_save(tmp_path, "big.tif", big))  # TIFF keeps the big-endian mode
    assert out16.dtype.isnative and out16.tolist() == [[1, 700]] and out16.flags.writeable
    with pytest.raises(ValueError, match="rgba.png"):
        utils.read_sem_seg(_save(tmp_path, "rgba.png", Image.new("RGBA", (2, 2))))


def test_read_pan_seg_accepts_lossless_modes_only(tmp_path):
    rgb = np.array([[[1, 0, 0], [44, 1, 0]], [[0, 0, 0], [255, 255, 255]]], np.uint8)
    np.testing.assert_array_equal(utils.read_pan_seg(_save(tmp_path, "rgb.png", Image.fromarray(rgb))), rgb)
    np.testing.assert_array_equal(utils.read_pan_seg(_save(tmp_path, "pal.png", Image.fromarray(rgb).quantize())), rgb)
    grey = np.array([[0, 5], [9, 9]], np.uint8)  # an optimizer may store an all-grey PNG as "L"
    np.testing.assert_array_equal(utils.read_pan_seg(_save(tmp_path, "l.png", Image.fromarray(grey))),
                                  np.repeat(grey[..., None], 3, axis=2))
    with pytest.raises(ValueError, match="g16.png"):  # ids > 255 would be saturated
        utils.read_pan_seg(_save(tmp_path, "g16.png", Image.fromarray(np.array([[1, 700]], np.uint16))))
    with pytest.raises(ValueError, match="cmyk.jpg"):
        utils.read_pan_seg(_save(tmp_path, "cmyk.jpg", Image.fromarray(rgb).convert("CMYK")))


def test_check_class_ids_names_the_file_and_the_values():
    utils.check_class_ids(np.array([[0, 9], [255, 3]]), 10, "ok.png", ignore_label=255)
    utils.check_class_ids([], 10, "empty.json")
    with pytest.raises(utils.LabelOutOfRangeError, match=r"a.png' has labels \[10, 200\] outside \[0, 10\)"):
        utils.check_class_ids(np.array([[0, 10], [200, 255]]), 10, "a.png", ignore_label=255)
    with pytest.raises(utils.LabelOutOfRangeError, match=r"\[-1\]"):
        utils.check_class_ids([3, -1], 10, "b.png", what="segment category ids")
    with pytest.raises(utils.LabelOutOfRangeError, match=r"\[255\]"):  # no ignore label: 255 is out of range
        utils.check_class_ids(np.array([255]), 10, "c.png")
    with pytest.raises(utils.LabelOutOfRangeError, match="not integer"):
        utils.check_class_ids([1.5], 10, "d.json")
    assert issubclass(utils.LabelOutOfRangeError, ValueError)
