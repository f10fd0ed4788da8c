"""`Predictor(out_dir).predict(files_or_texts)`: labels and probabilities from an exported run.

It reads only what `finetune` exported, with the tools anyone has: transformers for a text model
(the `model/` folder), onnxruntime for an image model (`model.onnx`), never the training code or
its checkpoints. `coursekit predict DIR FILES...` is the same on the command line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data import IMAGE_SUFFIXES, read_image
from .export import quiet_transformers
from .userdata import DataError

__all__ = ["Predictor", "expand_inputs"]


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders replaced by the files inside them (sorted, hidden ones left out)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p}: no such file or folder.")
    return files


class Predictor:
    """Loads `out_dir/run.json` and the exported model; `predict` returns one dict per input:
    {"input", "label", "probability", "probabilities": {class: p}}."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        run_file = self.out_dir / "run.json"
        if not run_file.exists():
            raise FileNotFoundError(
                f"{run_file} not found: point Predictor at a folder written by coursekit.finetune."
            )
        self.run = json.loads(run_file.read_text(encoding="utf-8"))
        self.kind, self.classes = self.run["kind"], self.run["classes"]
        if self.kind == "text":
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            folder = self.out_dir / "model"
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
                self.model = AutoModelForSequenceClassification.from_pretrained(
                    folder,
                    local_files_only=True,
                    trust_remote_code=True,  # finetune's own code
                ).eval()
        else:
            import onnxruntime as ort

            self.session = ort.InferenceSession(
                str(self.out_dir / "model.onnx"), providers=["CPUExecutionProvider"]
            )

    def probabilities(self, inputs: Sequence[Any]) -> np.ndarray:
        """[N, classes] probabilities: texts (or text files) / image files (or arrays)."""
        if self.kind == "text":
            import torch

            texts = [_as_text(x) for x in inputs]
            batch = self.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.run["max_length"],
                return_tensors="pt",
            )
            with torch.no_grad():
                return self.model(**batch).logits.softmax(-1).numpy()
        size = self.run["image_size"]
        pixels = np.stack([_as_pixels(x, size) for x in inputs]).astype(np.float32) / 255
        return self.session.run(["probabilities"], {"pixels": pixels.transpose(0, 3, 1, 2)})[0]

    def predict(self, inputs: Sequence[Any] | str | Path) -> list[dict[str, Any]]:
        """Label and probabilities for each input (a file, a folder of files, a text)."""
        if isinstance(inputs, (str, Path)):
            inputs = [inputs]
        inputs = [f for x in inputs for f in (expand_inputs([x]) if _is_dir(x) else [x])]
        probs = self.probabilities(inputs)
        return [
            {
                "input": str(x),
                "label": self.classes[int(p.argmax())],
                "probability": float(p.max()),
                "probabilities": dict(zip(self.classes, map(float, p), strict=True)),
            }
            for x, p in zip(inputs, probs, strict=True)
        ]


def _is_dir(x: Any) -> bool:
    return isinstance(x, (str, Path)) and len(str(x)) < 4096 and Path(x).is_dir()


def _as_text(x: Any) -> str:
    """A text, or the contents of a text file when `x` names one."""
    if isinstance(x, Path) or (
        isinstance(x, str)
        and len(x) < 4096
        and "\n" not in x
        and Path(x).suffix
        and Path(x).is_file()
    ):
        try:
            return Path(x).read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{x}: not UTF-8; save it as UTF-8 and try again.") from err
    return str(x)


def _as_pixels(x: Any, size: int) -> np.ndarray:
    if isinstance(x, np.ndarray):
        from PIL import Image, ImageOps

        return np.asarray(
            ImageOps.fit(Image.fromarray(x).convert("RGB"), (size, size), Image.Resampling.BILINEAR)
        )
    if Path(x).suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"{x}: not an image file ({', '.join(IMAGE_SUFFIXES)}).")
    return read_image(x, size)
