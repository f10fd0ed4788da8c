"""`Predictor(out_dir).predict(files_or_texts)`: labels and probabilities from an exported run.

It reads only what `finetune` exported, with the tools anyone has: transformers for a text model
(the `model/` folder), onnxruntime for an image model (`model.onnx`, its inputs read as training
read them: `pixels.py`), never the training code or its checkpoints.

New inputs are as messy as training data: a folder of new photos holds a `Thumbs.db` and a
half-copied file. Files in a folder that are no input for the model (not images, hidden, system
files) are skipped and listed (`Predictions.skipped`). An unreadable input stops nothing: every
input is read first, then the unreadable ones are named together (a DataError), or, with
`skip_bad=True`, listed in `Predictions.failed` while all the others are predicted.
`coursekit predict DIR FILES...` prints an error line for each unreadable input, predicts the
rest, and exits with status 1 if any input failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .export import quiet_transformers
from .images import check_images, hidden_or_system, not_an_image
from .pixels import model_input, to_rgb
from .userdata import DataError, option, problem_lines

__all__ = ["Predictions", "Predictor", "expand_inputs", "print_predictions"]


class Predictions(list):
    """The rows `Predictor.predict` returns (a list of dicts), plus what it left out:
    `skipped`, files inside folders that are no input for the model, and `failed`, inputs that
    could not be read; both as (input, why)."""

    def __init__(
        self,
        rows: list[dict[str, Any]],
        skipped: list[tuple[str, str]] | None = None,
        failed: list[tuple[str, str]] | None = None,
    ):
        super().__init__(rows)
        self.skipped = list(skipped or [])
        self.failed = list(failed or [])


def expand_inputs(
    inputs: Sequence[Any], images: bool = True
) -> tuple[list[Any], list[tuple[str, str]]]:
    """(inputs with each folder replaced by the files inside it, sorted; the files left out with
    the reason: hidden and system files, and for an image model files that are not images)."""
    out: list[Any] = []
    skipped: list[tuple[str, str]] = []
    for x in inputs:
        if not _is_dir(x):
            out.append(x)
            continue
        for f in sorted(p for p in Path(x).rglob("*") if p.is_file()):
            why = not_an_image(f, Path(x)) if images else hidden_or_system(f, Path(x))
            if why:
                skipped.append((str(f), why))
            else:
                out.append(f)
    return out, skipped


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
        """[N, classes] probabilities: texts (or text files) / image files (or arrays). A
        DataError names every input that cannot be read."""
        ready, failed = self._read(list(inputs))
        if failed:
            raise _failed(failed)
        return self._run(list(ready.values()))

    def predict(self, inputs: Sequence[Any] | str | Path, skip_bad: bool = False) -> Predictions:
        """Label and probabilities for each input (a file, a folder of files, a text).

        Files in folders that are no input for the model are skipped (`.skipped`). Inputs that
        cannot be read raise one DataError naming them all; with `skip_bad=True` they are left
        out instead and listed in `.failed`."""
        if isinstance(inputs, (str, Path)):
            inputs = [inputs]
        inputs, skipped = expand_inputs(list(inputs), images=self.kind == "image")
        ready, failed = self._read(inputs)
        if failed and not skip_bad:
            raise _failed(failed)
        probs = self._run(list(ready.values())) if ready else np.zeros((0, len(self.classes)))
        rows = [
            {
                "input": str(inputs[i]),
                "label": self.classes[int(p.argmax())],
                "probability": float(p.max()),
                "probabilities": dict(zip(self.classes, map(float, p), strict=True)),
            }
            for i, p in zip(ready, probs, strict=True)
        ]
        return Predictions(rows, skipped, failed)

    def _read(self, inputs: list[Any]) -> tuple[dict[int, Any], list[tuple[str, str]]]:
        """({position: model-ready input}, [(input, why it cannot be read)]), in input order."""
        ready: dict[int, Any] = {}
        if self.kind == "text":
            failed_texts = []
            for i, x in enumerate(inputs):
                text, why = _as_text(x)
                if why:
                    failed_texts.append((str(x), why))
                else:
                    ready[i] = text
            return ready, failed_texts
        size = self.run["image_size"]
        files = [i for i, x in enumerate(inputs) if not isinstance(x, np.ndarray)]
        for i, x in enumerate(inputs):
            if isinstance(x, np.ndarray):
                ready[i] = model_input(to_rgb(_as_image(x))[0], size)
        _, problems, pixels = check_images([inputs[i] for i in files], size)
        failed = {}
        for j, i in enumerate(files):
            if problems[j]:
                exists = Path(inputs[i]).exists()
                failed[i] = (str(inputs[i]), problems[j] if exists else "no such file or folder")
            else:
                ready[i] = pixels[j]
        return dict(sorted(ready.items())), [failed[i] for i in sorted(failed)]

    def _run(self, ready: list[Any]) -> np.ndarray:
        if self.kind == "text":
            import torch

            batch = self.tokenizer(
                ready,
                padding=True,
                truncation=True,
                max_length=self.run["max_length"],
                return_tensors="pt",
            )
            with torch.no_grad():
                return self.model(**batch).logits.softmax(-1).numpy()
        pixels = np.stack(ready).astype(np.float32) / 255
        return self.session.run(["probabilities"], {"pixels": pixels.transpose(0, 3, 1, 2)})[0]


def print_predictions(out: Predictions, as_json: bool = False, skip_bad: bool = False) -> int:
    """What `coursekit predict` prints: `label<TAB>probability<TAB>input` (or a JSON object) per
    prediction, then an error line per unreadable input (with `skip_bad`: listed on stderr
    instead); skipped files on stderr. Returns the exit status: 1 if any input failed, else 0."""
    import sys

    for row in out:
        print(json.dumps(row) if as_json else
              f"{row['label']}\t{row['probability']:.3f}\t{row['input']}")  # fmt: skip
    if not skip_bad:
        for what, why in out.failed:
            print(json.dumps({"input": what, "error": why}) if as_json else
                  f"error\t-\t{what}\t{why}")  # fmt: skip
    if out.skipped:
        print(f"skipped {len(out.skipped)} files, no input for this model:", file=sys.stderr)
        print("\n".join(problem_lines(out.skipped)), file=sys.stderr)
    if out.failed:
        where = "listed below" if skip_bad else "in the error lines of the output"
        hint = "" if skip_bad else f"; {option('skip_bad', True)} lists them here instead"
        print(f"{len(out.failed)} of {len(out) + len(out.failed)} inputs could not be read "
              f"({where}); the others were predicted{hint}.", file=sys.stderr)  # fmt: skip
        if skip_bad:
            print("\n".join(problem_lines(out.failed, None)), file=sys.stderr)
    return 1 if out.failed else 0


def _failed(failed: list[tuple[str, str]]) -> DataError:
    n = len(failed)
    return DataError(
        "\n".join(
            [
                f"{n} input{'s' * (n != 1)} cannot be read:",
                *problem_lines(failed),
                f"Fix or remove {'them' if n > 1 else 'it'}, or pass {option('skip_bad', True)} "
                "to predict the others (the failures are listed in `.failed`).",
            ]
        ),
        failed,
    )


def _is_dir(x: Any) -> bool:
    return isinstance(x, (str, Path)) and len(str(x)) < 4096 and Path(x).is_dir()


def _as_image(x: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(x)


def _as_text(x: Any) -> tuple[str, str]:
    """(the text, '') for a text, or for a text file its contents; ('', why) if unreadable."""
    if isinstance(x, Path) or (
        isinstance(x, str)
        and len(x) < 4096
        and "\n" not in x
        and Path(x).suffix
        and Path(x).is_file()
    ):
        try:
            return Path(x).read_text(encoding="utf-8"), ""
        except UnicodeDecodeError:
            return "", "not UTF-8 text; save it as UTF-8"
        except OSError as err:
            return "", f"cannot be read ({err.strerror or err})"
    return str(x), ""
