"""How an image file becomes the pixels a model sees: upright, 8-bit RGB, a centre square.

A photo is more than its pixel array. A phone stores a portrait photo as the sensor's landscape
image plus an EXIF tag saying "turn me 90 degrees"; every viewer applies the tag, so a model must
too, or it trains (and later predicts) on sideways photos. A scan or a microscope image may hold
16 bits per pixel (values up to 65,535): squeezing it into 8 bits by clipping turns it white, so
it is scaled by its own range instead. Transparent parts show the background they are shown on.

`read_pixels(file, size)` does it all, in this order (lesson 07; `coursekit finetune` and
`Predictor` read every image through it):

1. JPEGs much larger than `size` are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling,
   Pillow's `draft`): the same picture for a fraction of the work;
2. the EXIF orientation is applied (`ImageOps.exif_transpose`);
3. the colour mode becomes 8-bit RGB as `CONVERSIONS` states, mode by mode;
4. the centre square is cropped and resized to `size` x `size` (bilinear: `ImageOps.fit`).

The exported ONNX model takes these pixels / 255 (float32, N x 3 x size x size). This file needs
only Pillow and numpy, so `coursekit finetune` copies it next to `model.onnx` as `preprocess.py`:
whoever runs the model prepares its inputs exactly as training did.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps

__all__ = ["CONVERSIONS", "HIGH_BIT_MODES", "model_input", "read_pixels", "to_rgb"]

ORIENTATION_TAG = 0x0112  # EXIF "Orientation": 1 upright; 3 upside down; 6 and 8 on their side
HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_BY_RANGE = "scaled linearly from the image's own lowest to highest value onto 0-255 (not clipped)"
_ON_WHITE = "transparent parts composited onto white"
CONVERSIONS = {
    "RGB": "kept as is",
    "L": "grey, copied to R, G and B",
    "1": "black and white, as 0 and 255 in R, G and B",
    "P": "palette colours looked up (transparent ones onto white)",
    "RGBA": _ON_WHITE,
    "RGBa": _ON_WHITE,
    "LA": f"grey, {_ON_WHITE}",
    "La": f"grey, {_ON_WHITE}",
    "PA": f"palette colours looked up, {_ON_WHITE}",
    "RGBX": "padding byte dropped",
    "CMYK": "to RGB through the file's colour profile, or Pillow's formula if it has none",
    "YCbCr": "to RGB (Pillow's conversion)",
    "HSV": "to RGB (Pillow's conversion)",
    "LAB": "CIE Lab to sRGB (Pillow's ImageCms)",
    "I;16": f"16-bit grey, {_BY_RANGE}",
    "I;16L": f"16-bit grey, {_BY_RANGE}",
    "I;16B": f"16-bit grey, {_BY_RANGE}",
    "I;16N": f"16-bit grey, {_BY_RANGE}",
    "I": f"32-bit integer grey, {_BY_RANGE}",
    "F": f"32-bit float grey, {_BY_RANGE}",
    # 16 bits per channel in colour: Pillow itself keeps the top 8 bits (value / 256)
    "RGB;16": "16 bits per channel, scaled from 0-65,535 to 0-255 (Pillow keeps the top 8 bits)",
    "RGBA;16": f"16 bits per channel, scaled from 0-65,535 to 0-255, {_ON_WHITE}",
    "LA;16": f"16-bit grey, scaled from 0-65,535 to 0-255, {_ON_WHITE}",
}
OTHER_MODE = "to RGB by Pillow's convert('RGB')"


def _stored_mode(im: Image.Image) -> str:
    """The colour mode as stored: Pillow's mode, plus ';16' for 16 bits per colour channel
    (which Pillow reads into an 8-bit mode, so only the decoder's raw mode tells)."""
    raw = " ".join(str(getattr(t, "args", "")) for t in (im.tile or []))
    if im.mode in ("RGB", "RGBA") and ";16" in raw:
        return "LA;16" if raw.startswith("LA;16") else f"{im.mode};16"
    return im.mode


def to_rgb(im: Image.Image) -> tuple[Image.Image, str]:
    """(8-bit RGB image, how: '' when `CONVERSIONS` says it all, else what this image needed,
    e.g. the value range of a 16-bit image)."""
    mode = im.mode
    if mode == "RGB":
        return im, ""
    if mode in HIGH_BIT_MODES:
        values = np.asarray(im, dtype=np.float32)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
        scaled = (values - low) * (255 / (high - low)) if high > low else values * 0
        grey = Image.fromarray(np.rint(np.clip(scaled, 0, 255)).astype(np.uint8))
        return grey.convert("RGB"), f"values {low:,.6g} to {high:,.6g} scaled to 0-255"
    if "A" in mode or "a" in mode or (mode == "P" and "transparency" in im.info):
        on_white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(on_white, im.convert("RGBA")).convert("RGB"), ""
    if mode == "LAB" or (mode == "CMYK" and im.info.get("icc_profile")):
        return _through_profile(im)
    return im.convert("RGB"), ""


def _through_profile(im: Image.Image) -> tuple[Image.Image, str]:
    """CMYK with its embedded profile, or Lab, to sRGB (Pillow's littleCMS binding)."""
    import io

    from PIL import ImageCms

    try:
        source = (
            ImageCms.createProfile("LAB")
            if im.mode == "LAB"
            else ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        )
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(im, source, srgb, outputMode="RGB"), ""
    except (ImageCms.PyCMSError, OSError, ValueError):  # a broken profile: the plain formula
        return im.convert("RGB"), "its colour profile is unreadable: Pillow's formula used"


def model_input(rgb: Image.Image, size: int) -> np.ndarray:
    """uint8 size x size x 3: the centre square of `rgb`, resized (bilinear)."""
    return np.asarray(ImageOps.fit(rgb, (size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def read_pixels(
    file: str | BinaryIO | Any, size: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one image file (a path or an open binary file) as people see it.

    Returns uint8 RGB pixels, upright (H x W x 3; with `size`, size x size x 3, the model's
    input), and facts: `width` and `height` as displayed, the stored colour `mode` (a key of
    `CONVERSIONS`), the EXIF `orientation` (1 = stored upright) and `conversion` ('' or what
    this image needed beyond `CONVERSIONS[mode]`). Raises what Pillow raises for a file that is
    not a readable image (UnidentifiedImageError, OSError for a truncated file, ...)."""
    with Image.open(file) as im:
        mode = _stored_mode(im)
        orientation = int(im.getexif().get(ORIENTATION_TAG, 1) or 1)
        width, height = im.size if orientation < 5 else im.size[::-1]  # 5-8 turn by 90 degrees
        if size is not None:
            im.draft(None, (size, size))  # JPEG only: decode at the smallest scale >= size
        upright = ImageOps.exif_transpose(im)  # decodes the whole file
    rgb, conversion = to_rgb(upright)
    pixels = model_input(rgb, size) if size is not None else np.asarray(rgb, dtype=np.uint8)
    facts = dict(width=width, height=height, mode=mode, orientation=orientation)
    return pixels, {**facts, "conversion": conversion}


if __name__ == "__main__":  # python preprocess.py IMAGE SIZE: the array the model is given
    import sys

    x, info = read_pixels(sys.argv[1], int(sys.argv[2]))
    print(info, "->", x.shape, x.dtype, f"mean {x.mean():.1f}")
