"""Own data as it really comes (issue 26): phone photos with an EXIF orientation, 16-bit scans,
every colour mode, folders with junk and several broken files, `predict` over such a folder,
tables without `text`/`label` columns (or without a header at all).

Each case writes its own files; the texts are the course's real tweets.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageFile
from torch import nn

from coursekit.cli import main
from coursekit.finetune import DataError, Predictor, data_report, finetune, load_data, read_image
from coursekit.finetune.examples import tweets_csv
from coursekit.finetune.export import export_onnx, write_preprocessing
from coursekit.finetune.images import take_pixels
from coursekit.finetune.pixels import CONVERSIONS, OTHER_MODE

from conftest import require_asset

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
# EXIF orientation -> the operation a viewer applies; the file stores its inverse
VIEWER = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
INVERSE = {Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
           Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270}  # fmt: skip


def upright_quadrants(width: int = 82, height: int = 90) -> np.ndarray:
    """A portrait picture whose four quadrants differ: red, green / blue, white."""
    x = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    x[:h, :w], x[:h, w:], x[h:, :w], x[h:, w:] = RED, GREEN, BLUE, WHITE
    return x


def quadrant_colours(x: np.ndarray) -> list[tuple[int, ...]]:
    """The mean colour (rounded to 0 or 255) of each quadrant's centre."""
    h, w = x.shape[0] // 4, x.shape[1] // 4
    centres = [(h, w), (h, 3 * w), (3 * h, w), (3 * h, 3 * w)]
    return [tuple(int(round(c / 255)) * 255 for c in x[y, z]) for y, z in centres]


def phone_jpeg(path: Path, orientation: int, upright: np.ndarray | None = None) -> Path:
    """A JPEG stored the way a phone stores it: pixels as the sensor saw them, plus the EXIF
    orientation that turns them upright."""
    upright = upright_quadrants() if upright is None else upright
    op = VIEWER[orientation]
    stored = Image.fromarray(upright).transpose(INVERSE.get(op, op))
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, exif=exif, quality=95)
    return path


def png16(path: Path, values: np.ndarray) -> Path:
    """A 16-bit PNG (grey: H x W; colour: H x W x 3), written chunk by chunk (Pillow cannot
    write 16 bits per colour channel)."""
    h, w = values.shape[:2]
    colour = 2 if values.ndim == 3 else 0
    rows = values.reshape(h, -1).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def gradient16(high: int = 63993, shape: tuple[int, int] = (40, 64)) -> np.ndarray:
    return np.tile(np.linspace(0, high, shape[1]), (shape[0], 1)).astype(np.uint16)


def photo_folder(root: Path, per_class: int = 4) -> Path:
    """Two classes of small generated photos (bright / dark, a little noise each)."""
    rng = np.random.default_rng(0)
    for name, level in (("bright", 200), ("dark", 50)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            x = np.clip(level + rng.normal(0, 20, (24, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(x).save(root / name / f"{i}.png")
    return root


# --- images read as people see them ------------------------------------------------------------


@pytest.mark.parametrize("orientation", sorted(VIEWER))
def test_an_exif_rotated_jpeg_comes_back_upright(tmp_path, orientation):
    path = phone_jpeg(tmp_path / "phone.jpg", orientation)
    with Image.open(path) as stored:
        assert quadrant_colours(np.asarray(stored)) != [RED, GREEN, BLUE, WHITE]
    x = read_image(path)
    assert x.shape == (90, 82, 3)  # portrait, as displayed
    assert quadrant_colours(x) == [RED, GREEN, BLUE, WHITE]
    assert quadrant_colours(read_image(path, 40)) == [RED, GREEN, BLUE, WHITE]


def test_the_data_report_training_copies_and_predict_all_see_the_photo_upright(tmp_path):
    root = photo_folder(tmp_path / "photos")
    phone_jpeg(root / "bright" / "phone.jpg", 6)
    data = load_data(root, image_size=40)
    i = data.items.index(str(root / "bright" / "phone.jpg"))
    assert data.info["size"][i] == (82, 90) and data.info["orientation"][i] == 6
    assert quadrant_colours(data.pixels[40][i]) == [RED, GREEN, BLUE, WHITE]
    assert "turned upright by their EXIF orientation: 1 (turned 90 clockwise: 1)" in data_report(
        data
    )


def test_a_16_bit_png_keeps_its_contrast(tmp_path):
    path = png16(tmp_path / "scan.png", gradient16())
    with Image.open(path) as im:
        assert im.mode == "I;16"
        clipped = np.asarray(im.convert("RGB"))
    assert clipped.mean() > 250  # what plain Pillow gives: almost white
    x = read_image(path)
    assert x.min() == 0 and x.max() == 255 and x.std() > 70
    assert (np.diff(x[0, :, 0].astype(int)) >= 0).all()  # still a gradient, left to right
    assert np.array_equal(x[..., 0], x[..., 2])  # grey
    # 12 bits in a 16-bit file (values up to 4,095) use the whole 8-bit range too
    assert read_image(png16(tmp_path / "12bit.png", gradient16(4095))).max() == 255


def test_the_report_names_each_high_bit_depth_image_and_how_it_was_scaled(tmp_path):
    root = photo_folder(tmp_path / "scans")
    png16(root / "dark" / "scan16.png", gradient16())
    colour = np.stack([gradient16(), gradient16()[:, ::-1], np.full((40, 64), 30000)], -1)
    png16(root / "bright" / "colour48.png", colour.astype(np.uint16))
    report = data_report(load_data(root))
    assert f"  I;16           1  {CONVERSIONS['I;16']}" in report
    assert "high bit depth, scaled to 8 bits: 2" in report
    assert "scan16.png: I;16, values 0 to 63,993 scaled to 0-255" in report
    assert f"colour48.png: RGB;16, {CONVERSIONS['RGB;16']}" in report
    x = read_image(root / "bright" / "colour48.png")
    assert x[0, 0, 0] == 0 and x[0, -1, 0] == 249 and x[0, 0, 2] == 117  # 63,993 / 256; 30,000


def test_every_colour_mode_maps_to_a_stated_conversion(tmp_path):
    root = photo_folder(tmp_path / "modes", per_class=3)
    grey = Image.fromarray(np.tile(np.arange(0, 256, 8, dtype=np.uint8), (24, 1)))
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 0], rgba[:, 16:, 3] = 255, 255  # red; the left half fully transparent
    palette = Image.new("P", (32, 24), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0])
    files = {
        "one.png": grey.convert("1"),
        "grey.png": grey,
        "grey_alpha.png": grey.convert("LA"),
        "palette.gif": palette,
        "rgba.png": Image.fromarray(rgba),
        "cmyk.jpg": Image.new("CMYK", (32, 24), (0, 255, 255, 0)),
        "float.tif": Image.fromarray(np.linspace(0, 1, 768, dtype=np.float32).reshape(24, 32)),
        "int32.tif": Image.fromarray(np.arange(768, dtype=np.int32).reshape(24, 32) * 1000),
        "lab.tif": Image.new("LAB", (32, 24), (128, 128, 128)),
    }
    for name, im in files.items():
        im.save(root / "dark" / name)
    data = load_data(root)
    modes = set(data.info["mode"])
    assert modes >= {"1", "L", "LA", "P", "RGBA", "CMYK", "F", "I", "LAB", "RGB"}
    assert all(m in CONVERSIONS for m in modes)
    report = data_report(data)
    for mode in modes:
        assert f"  {mode:<8}" in report and CONVERSIONS[mode] in report
    assert OTHER_MODE not in report
    x = read_image(root / "dark" / "rgba.png")
    assert tuple(x[0, 0]) == WHITE and tuple(x[0, -1]) == RED  # transparent onto white
    assert tuple(read_image(root / "dark" / "cmyk.jpg")[0, 0]) == pytest.approx(RED, abs=2)
    assert 110 < read_image(root / "dark" / "lab.tif")[0, 0, 0] < 130  # L=50%: mid grey


# --- one pass finds every bad file -------------------------------------------------------------


def break_files(root: Path, n: int) -> list[str]:
    """n broken images of different kinds in `root/dark`, plus junk that is not an image."""
    good = next((root / "bright").glob("*.png")).read_bytes()
    kinds = [good[:60], b"", b"this is not a picture", good[: len(good) // 2]]
    suffixes = [".png", ".jpg", ".png", ".png"]
    broken = []
    for i in range(n):
        path = root / "dark" / f"broken{i:02d}{suffixes[i % 4]}"
        path.write_bytes(kinds[i % 4])
        broken.append(str(path))
    (root / "dark" / "Thumbs.db").write_bytes(b"\x00" * 64)
    (root / "dark" / ".DS_Store").write_bytes(b"\x00" * 64)
    (root / "dark" / "notes.txt").write_text("shot in May", encoding="utf-8")
    return broken


def test_a_folder_with_3_broken_files_is_reported_in_one_run(tmp_path):
    root = photo_folder(tmp_path / "photos")
    broken = break_files(root, 3)
    with pytest.raises(DataError) as caught:
        load_data(root)
    message = str(caught.value)
    assert message.startswith(f"{root}: 3 of 11 images cannot be read (all 11 checked")
    assert all(f"{b}: cannot read this image" in message for b in broken)
    assert "skip_bad=True to leave exactly these 3 out" in message
    assert [p for p, _ in caught.value.problems] == broken
    data = load_data(root, skip_bad=True)
    unreadable = [p for p, why in data.skipped if why.startswith("cannot read")]
    assert unreadable == broken and len(data.items) == 8
    assert dict(data.skipped)[broken[1]] == "cannot read this image (an empty file)"
    skipped = dict(data.skipped)
    assert skipped[str(root / "dark" / "Thumbs.db")] == "a system file, not an image"
    assert skipped[str(root / "dark" / ".DS_Store")] == "a hidden file"
    assert skipped[str(root / "dark" / "notes.txt")].startswith("not an image")


def test_many_broken_files_show_20_and_list_all_in_the_run_folder(tmp_path, capsys):
    root = photo_folder(tmp_path / "photos")
    broken = break_files(root, 25)
    with pytest.raises(DataError) as caught:
        finetune(root, tmp_path / "run")  # fails in the data check, before any model loads
    message = str(caught.value)
    assert sum(b in message for b in broken) == 20 and "... and 5 more" in message
    listed = tmp_path / "run" / "data_problems.txt"
    assert f"All 25 are listed in {listed}" in message
    assert [line.split("\t")[0] for line in listed.read_text().splitlines()] == broken
    with pytest.raises(ValueError, match="unknown strategy"):  # stops right after the data check
        finetune(root, tmp_path / "run", skip_bad=True, strategy="none")
    assert not listed.exists()  # the list of a run whose files are now skipped is gone
    # the command line names its flag, not the Python argument
    assert main(["finetune", str(root), "--out", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err
    assert "pass --skip-bad to leave exactly these 25 out" in err and "skip_bad" not in err


def test_each_image_is_decoded_once_for_the_check_and_training(tmp_path, monkeypatch):
    root = photo_folder(tmp_path / "photos", per_class=6)
    phone_jpeg(root / "bright" / "phone.jpg", 6)
    decoded: list[int] = []
    original = ImageFile.ImageFile.load

    def counting_load(self):
        if self.tile:  # not yet decoded: this call decodes
            decoded.append(1)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    data = load_data(root, image_size=16)
    pixels = take_pixels(data, 16)  # what training reads: the check's copy
    assert len(decoded) == len(data.items) == 13 and pixels.shape == (13, 16, 16, 3)
    assert data.pixels == {}  # handed over, not kept twice


# --- predict that finishes ---------------------------------------------------------------------


class Brightness(nn.Module):
    """A fixed two-class rule, no learned weights: 'bright' when the mean pixel is above 0.5."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], 1) * 10


@pytest.fixture
def brightness_model(tmp_path):
    """A finetune-like output folder whose model.onnx is the `Brightness` rule."""
    out = tmp_path / "model"
    out.mkdir()
    # normalised by EfficientNet's statistics, mean pixel 0.5 maps to about 0
    export_onnx(
        Brightness(), "efficientnet_lite0", 16, out / "model.onnx", torch.rand(2, 3, 16, 16)
    )
    write_preprocessing(out)
    (out / "run.json").write_text(json.dumps({"kind": "image", "classes": ["dark", "bright"],
                                              "image_size": 16}))  # fmt: skip
    return out


def test_predict_over_a_folder_with_junk_and_a_broken_file(tmp_path, brightness_model, capsys):
    root = photo_folder(tmp_path / "new", per_class=2)
    broken = break_files(root, 1)[0]
    phone_jpeg(root / "bright" / "phone.jpg", 6, np.full((90, 82, 3), 230, np.uint8))
    predictor = Predictor(brightness_model)
    with pytest.raises(
        DataError, match=r"(?s)1 input cannot be read:.*broken00.png.*skip_bad=True"
    ):
        predictor.predict(root)
    out = predictor.predict(root, skip_bad=True)
    assert [(Path(r["input"]).name, r["label"]) for r in out] == [
        ("0.png", "bright"), ("1.png", "bright"), ("phone.jpg", "bright"),
        ("0.png", "dark"), ("1.png", "dark"),
    ]  # fmt: skip
    assert [p for p, _ in out.failed] == [broken]
    assert {Path(p).name for p, _ in out.skipped} == {"Thumbs.db", ".DS_Store", "notes.txt"}

    assert main(["predict", str(brightness_model), str(root), "missing.png"]) == 1
    stdout, stderr = capsys.readouterr()
    lines = stdout.splitlines()
    assert len(lines) == 7 and lines[:5] == [f"{r['label']}\t{r['probability']:.3f}\t{r['input']}"
                                            for r in out]  # fmt: skip
    assert lines[5].startswith(f"error\t-\t{broken}\tcannot read this image")
    assert lines[6] == "error\t-\tmissing.png\tno such file or folder"
    assert "skipped 3 files" in stderr and "Thumbs.db" in stderr
    assert "2 of 7 inputs could not be read" in stderr and "--skip-bad" in stderr

    assert main(["predict", str(brightness_model), str(root), "--skip-bad", "--json"]) == 1
    stdout, stderr = capsys.readouterr()
    assert [json.loads(line)["label"] for line in stdout.splitlines()] == [r["label"] for r in out]
    assert f"{broken}: cannot read this image" in stderr
    assert main(["predict", str(brightness_model), str(root / "dark" / "0.png")]) == 0


def test_preprocess_py_needs_only_pillow_and_numpy_and_matches_training(tmp_path, brightness_model):
    script = brightness_model / "preprocess.py"
    imports = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert imports <= {"__future__", "typing", "numpy", "PIL", "io", "sys"}, imports
    spec = importlib.util.spec_from_file_location("preprocess_copy", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["preprocess_copy"] = module
    spec.loader.exec_module(module)
    photo = phone_jpeg(tmp_path / "p.jpg", 8)
    scan = png16(tmp_path / "s.png", gradient16())
    for path in (photo, scan):
        pixels, _ = module.read_pixels(str(path), 16)
        assert np.array_equal(pixels, read_image(path, 16))
        session_input = pixels[None].astype(np.float32).transpose(0, 3, 1, 2) / 255
        import onnxruntime as ort

        session = ort.InferenceSession(str(brightness_model / "model.onnx"))
        probs = session.run(["probabilities"], {"pixels": session_input})[0]
        assert np.allclose(probs, Predictor(brightness_model).probabilities([path]), atol=1e-6)


# --- tables without the magic names ------------------------------------------------------------


@pytest.fixture(scope="module")
def tweets(tmp_path_factory):
    require_asset("tweets")
    path = tweets_csv(tmp_path_factory.mktemp("t") / "tweets.csv", per_class=40, binary=True)
    return pd.read_csv(path)


def test_a_csv_with_unnamed_columns_is_picked_by_content(tweets, tmp_path, capsys):
    table = pd.DataFrame({
        "id": np.arange(len(tweets)) + 1000,  # unique numbers: no label
        "text": tweets["text"],  # header left blank below: 'Unnamed: 1'
        "sentiment": tweets["sentiment"],  # blank: 'Unnamed: 2'
        "retweets": np.arange(len(tweets)) % 4,  # few distinct whole numbers: names win
        "airline": "United",  # one value: no label
    })  # fmt: skip
    rows = table.to_csv(index=False, header=False)
    (tmp_path / "export.csv").write_text("id,,,retweets,airline\n" + rows, encoding="utf-8")
    data = load_data(tmp_path / "export.csv")
    assert data.classes == ["negative", "positive"] and len(data.items) == 80
    assert data.items[:3] == [" ".join(t.split()) for t in tweets["text"][:3]]
    printed = capsys.readouterr().out
    assert "text column: 'Unnamed: 1', picked by content" in printed
    assert "label column: 'Unnamed: 2', picked by content" in printed
    assert "names preferred to numbers: 'retweets' (4 distinct values in 80 rows)" in printed
    assert "text_column=..., label_column=..." in printed
    assert printed.splitlines()[0] in data_report(data)


def test_an_ambiguous_table_is_refused_with_its_candidates(tweets, tmp_path, capsys):
    two_labels = tweets.assign(mood=tweets["sentiment"].map({"negative": "bad", "positive": "ok"}))
    two_labels = two_labels.rename(columns={"sentiment": "polarity", "text": "message"})
    two_labels.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(DataError) as caught:
        load_data(tmp_path / "labels.csv")
    message = str(caught.value)
    assert "no column is named like a label" in message and "several columns could be it" in message
    assert "'polarity' (2 distinct values in 80 rows)" in message and "'mood'" in message
    assert "label_column='polarity'" in message
    assert main(["finetune", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "--label-column polarity" in capsys.readouterr().err
    # two free-text columns of similar length
    two_texts = tweets.rename(columns={"text": "message"}).assign(
        reply=tweets["text"].sample(frac=1.0, random_state=0).to_numpy()
    )
    two_texts.to_csv(tmp_path / "texts.csv", index=False)
    with pytest.raises(DataError, match="several columns hold texts of similar length: 'message'"):
        load_data(tmp_path / "texts.csv")
    assert len(load_data(tmp_path / "texts.csv", text_column="reply").items) == 80


def test_a_csv_without_a_header_row_is_read_as_data(tweets, tmp_path, capsys):
    tweets[["text", "sentiment"]].to_csv(tmp_path / "raw.csv", index=False, header=False)
    data = load_data(tmp_path / "raw.csv")
    assert len(data.items) == 80 and data.classes == ["negative", "positive"]  # no row lost
    printed = capsys.readouterr().out
    assert "the first line looks like data" in printed and "column_1" in printed


def test_folders_for_a_text_model_skip_only_hidden_and_system_files(tmp_path):
    from coursekit.finetune.predict import expand_inputs

    (tmp_path / "mail" / ".git").mkdir(parents=True)
    for name in ("a.txt", "b.md", "Thumbs.db", ".DS_Store", ".git/config"):
        (tmp_path / "mail" / name).write_text("hello", encoding="utf-8")
    files, skipped = expand_inputs([tmp_path / "mail", "just a sentence"], images=False)
    assert [Path(f).name for f in files[:2]] == ["a.txt", "b.md"] and files[2] == "just a sentence"
    assert {Path(p).name: why for p, why in skipped} == {
        ".DS_Store": "a hidden file",
        "config": "inside a hidden folder",
        "Thumbs.db": "a system file",
    }
