"""Section 8: your own photos. `coursekit finetune` on a folder of JPEG photos against the usual
torchvision pipeline on the same folder: `ImageFolder` + `DataLoader` with a worker process per
core, which decodes and resizes every photo again in every epoch.

The photos are phone-sized JPEGs cut from the six real photos the course ships (`load_photos`:
random crops, one class per source photo, a quarter stored on their side with an EXIF
orientation, as phones store portrait photos). Both contenders train the same model the same way:
EfficientNet-Lite0 with only the new head trained, AdamW, the same epochs, batch size, image size,
augmentation (random resized crops and flips), a 70/15/15 split, validation every epoch, the test
split once, through the same `fit`. The difference is the data path: `finetune` decodes each
photo once (the data check, which keeps a resized uint8 copy; JPEGs decoded at reduced scale,
threads on every core) and augments tensors in memory; the baseline decodes full-size photos in
its workers every epoch. `finetune`'s time also covers what the baseline does not do: the data
report, the ONNX export and its check, the report's figures.
"""

from __future__ import annotations

import contextlib
import gc
import io
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .common import Sizes, interleaved, median

BATCH_SIZE = 32
SMOKE = {"photos": 48, "pixels": (320, 240), "epochs": 1, "image_size": 32}
FULL = {"photos": 1200, "pixels": (1600, 1200), "epochs": 3, "image_size": 64}


def write_photos(root: Path, n: int, pixels: tuple[int, int], seed: int = 0) -> Path:
    """`n` JPEGs of `pixels` (width, height) in `root/<photo>/`, cut from the course's real
    photos; every fourth one stored on its side with EXIF orientation 6."""
    from PIL import Image

    from coursekit.datasets import load_photos

    rng = np.random.default_rng(seed)
    photos = load_photos()
    for i in range(n):
        name = sorted(photos)[i % len(photos)]
        src = photos[name]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        im = Image.fromarray(src[y : y + ch, x : x + cw]).resize(pixels, Image.Resampling.BILINEAR)
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        if i % 4 == 3:
            exif[0x0112] = 6
            im = im.transpose(Image.Transpose.ROTATE_90)
        im.save(folder / f"{i:05d}.jpg", quality=90, exif=exif)
    return root


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (DataLoader workers)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _measure(fn: Callable[[], object]) -> dict[str, float]:
    """Wall and CPU seconds of `fn()`, workers included (collected, so they have exited)."""
    t0, c0 = time.perf_counter(), _cpu_seconds()
    with contextlib.redirect_stdout(io.StringIO()):
        fn()
    gc.collect()
    return {"wall": time.perf_counter() - t0, "cpu": _cpu_seconds() - c0}


def _coursekit(folder: Path, cfg: dict, device: torch.device) -> dict[str, dict[str, float]]:
    from coursekit.finetune import finetune, load_data

    def run() -> None:
        with tempfile.TemporaryDirectory() as out:
            finetune(
                folder, out, strategy="head", epochs=cfg["epochs"], image_size=cfg["image_size"],
                batch_size=BATCH_SIZE, train_per_class=10**9, device=device,
            )  # fmt: skip

    data = _measure(lambda: load_data(folder, image_size=cfg["image_size"]))
    return {"data": data, "run": _measure(run)}


def _torchvision(
    folder: Path, cfg: dict, workers: int, device: torch.device
) -> dict[str, dict[str, float]]:
    from torch.utils.data import DataLoader, Subset
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    from coursekit.finetune.build import apply_strategy
    from coursekit.models import load_pretrained, normalization_for
    from coursekit.training.evaluation import predict
    from coursekit.training.loop import fit

    size = cfg["image_size"]
    mean, std = normalization_for("efficientnet_lite0")
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    train_tf = v2.Compose(
        [v2.RandomResizedCrop(size, scale=(0.7, 1.0)), v2.RandomHorizontalFlip(), *tail]
    )
    eval_tf = v2.Compose([v2.Resize(size), v2.CenterCrop(size), *tail])
    train_set, eval_set = ImageFolder(folder, train_tf), ImageFolder(folder, eval_tf)
    order = np.random.default_rng(0).permutation(len(train_set))
    n_val = n_test = round(0.15 * len(order))
    parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "all": order}
    parts["train"] = order[n_test + n_val :]
    kw = {"batch_size": BATCH_SIZE, "num_workers": workers, "persistent_workers": workers > 0}

    def loader(ds: ImageFolder, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(Subset(ds, parts[split].tolist()), shuffle=shuffle, **kw)

    def decode_all() -> None:  # one epoch of decoding and resizing alone
        for _ in loader(eval_set, "all"):
            pass

    def run() -> None:
        net = load_pretrained("efficientnet_lite0", len(train_set.classes))
        apply_strategy(net, "head", "image")
        params = [p for p in net.parameters() if p.requires_grad]
        fit(
            net, loader(train_set, "train", shuffle=True), loader(eval_set, "val"),
            epochs=cfg["epochs"], optimizer=torch.optim.AdamW(params, lr=3e-3), device=device,
            progress=False,
        )  # fmt: skip
        predict(net, loader(eval_set, "test"), device)

    return {"data": _measure(decode_all), "run": _measure(run)}


def run(s: Sizes, device: torch.device) -> dict:
    from coursekit.finetune.images import workers as decode_threads

    cfg = SMOKE if s.smoke else FULL
    cores = decode_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_photos(Path(tmp) / "photos", cfg["photos"], cfg["pixels"])
        contenders = {
            "coursekit finetune": lambda: _coursekit(folder, cfg, device),
            f"ImageFolder + DataLoader ({cores} workers)": lambda: _torchvision(
                folder, cfg, cores, device
            ),
        }
        times = interleaved(contenders, s.repeats)
    per_1000 = 1000 / cfg["photos"]

    def per_thousand(ts: list[dict], part: str, clock: str) -> float:
        return round(median([t[part][clock] for t in ts]) * per_1000, 2)

    rows = [
        {
            "pipeline": name,
            "run_s_per_1000": per_thousand(ts, "run", "wall"),
            "run_cpu_s_per_1000": per_thousand(ts, "run", "cpu"),
            "data_s_per_1000": per_thousand(ts, "data", "wall"),
            "decodes_per_epoch": 0 if name.startswith("coursekit") else 1,
        }
        for name, ts in times.items()
    ]
    ours, theirs = rows
    return {
        "rows": rows,
        "photos": cfg["photos"],
        "photo_pixels": "x".join(map(str, cfg["pixels"])),
        "epochs": cfg["epochs"],
        "image_size": cfg["image_size"],
        "batch_size": BATCH_SIZE,
        "cores": cores,
        "repeats": s.repeats,
        "ratio": round(ours["run_s_per_1000"] / theirs["run_s_per_1000"], 3),
        "cpu_ratio": round(ours["run_cpu_s_per_1000"] / theirs["run_cpu_s_per_1000"], 3),
        "device": str(device),
    }
