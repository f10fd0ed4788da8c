"""`finetune` end to end on tiny real subsets (quick mode), its exports and `coursekit predict`.

One image run (Fashion-MNIST PNG folder, EfficientNet-Lite0, ONNX) and one text run (tweets CSV,
MiniLM + LoRA, through the `coursekit finetune` command), shared by the tests of this module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ImageFile

from coursekit.cli import main
from coursekit.finetune import ONNX_TOLERANCE, Predictor, finetune, load_data, pixels
from coursekit.finetune.examples import fashion_mnist_folder, tweets_csv

from conftest import require_asset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    require_asset("fashion_mnist")
    require_asset("efficientnet_lite0")
    tmp = tmp_path_factory.mktemp("image_run")
    root = fashion_mnist_folder(
        tmp / "clothes", per_class=20, classes=["Trouser", "Bag", "Sneaker"]
    )
    with pytest.MonkeyPatch.context() as patch:  # count the image decodes of the whole run
        original = ImageFile.ImageFile.load

        def counting_load(self):
            if self.tile:  # not decoded yet: this call decodes
                DECODES.append(getattr(self, "filename", "") or "a file")
            return original(self)

        patch.setattr(ImageFile.ImageFile, "load", counting_load)
        result = finetune(root, tmp / "out", epochs=2, image_size=32, batch_size=16)
    return root, result


DECODES: list[str] = []


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    require_asset("tweets")
    require_asset("minilm")
    tmp = tmp_path_factory.mktemp("text_run")
    csv = tweets_csv(tmp / "tweets.csv", per_class=30, binary=True)
    args = ["finetune", str(csv), "--out", str(tmp / "out"), "--strategy", "lora"]
    assert main([*args, "--epochs", "1", "--max-length", "32", "--batch-size", "16"]) == 0
    return csv, tmp / "out"


def test_image_run_trains_tests_and_writes_its_report(image_run):
    _, result = image_run
    assert result.choices["strategy"].startswith("head")  # 14 per class: a linear probe
    assert len(result.history.epochs) == 2
    m = result.metrics
    assert m["n"] == 9 and m["accuracy_ci"][0] <= m["accuracy"] <= m["accuracy_ci"][1]
    assert m["accuracy"] > 1 / 3  # better than chance on three very different classes
    assert sum(map(sum, m["confusion"])) == 9
    report = (result.out_dir / "report.md").read_text(encoding="utf-8")
    assert f"accuracy **{m['accuracy']:.3f}**" in report
    assert (result.out_dir / "confusion.png").stat().st_size > 1000
    assert (result.out_dir / "wrong.png").exists()


def test_two_epochs_decode_each_image_once_plus_the_shown_mistakes(image_run):
    """60 images, 2 epochs: one decode per image (the check, which keeps the training copy),
    plus at most 8 for the figure of the most confidently wrong test images."""
    _, result = image_run
    assert 60 <= len(DECODES) <= 60 + 8, len(DECODES)


def test_onnx_export_matches_pytorch_within_tolerance(image_run):
    root, result = image_run
    run = json.loads((result.out_dir / "run.json").read_text(encoding="utf-8"))
    assert run["onnx_max_abs_diff"] <= ONNX_TOLERANCE
    assert "EXIF orientation" in run["input"] and "preprocess.py" in run["input"]
    assert (result.out_dir / "preprocess.py").read_bytes() == Path(pixels.__file__).read_bytes()
    files = [result.data.items[i] for i in result.data.splits["test"]]
    onnx_probs = Predictor(result.out_dir).probabilities(files)
    from coursekit.finetune.build import image_dataset_for, image_tensors

    dataset = image_dataset_for(
        image_tensors(files, 32), np.zeros(len(files)), "efficientnet_lite0"
    )
    with torch.no_grad():
        torch_probs = result.model(torch.stack([x for x, _ in dataset])).softmax(-1).numpy()
    assert np.abs(onnx_probs - torch_probs).max() <= ONNX_TOLERANCE
    assert np.allclose(onnx_probs, result.test_probs.numpy(), atol=ONNX_TOLERANCE)


def test_a_second_call_resumes_from_the_checkpoint(image_run, capsys):
    root, result = image_run
    again = finetune(root, result.out_dir, epochs=2, image_size=32, batch_size=16)
    assert "Resumed from" in capsys.readouterr().out
    assert again.history.epochs == result.history.epochs  # nothing retrained
    assert again.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])


def test_coursekit_predict_on_a_folder_of_files(image_run, capsys):
    root, result = image_run
    assert main(["predict", str(result.out_dir), str(root / "Bag"), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 20 and all(r["label"] in ("Bag", "Sneaker", "Trouser") for r in rows)
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in rows)
    assert sum(r["label"] == "Bag" for r in rows) > 20 / 3


def test_the_exported_text_model_predicts_as_before_export(text_run):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    csv, out = text_run
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["classes"] == ["negative", "positive"]
    assert run["choices"]["strategy"] == "lora (as asked)"
    assert run["choices"]["trainable"].startswith("74,498 of")  # the LoRA of lessons 05 and 06
    # written by the trained LoRA model before merging and export
    before = [json.loads(line) for line in (out / "test_predictions.jsonl").open(encoding="utf-8")]
    texts = [r["input"] for r in before]
    assert len(texts) == 8  # 15% of 30 tweets per class (round(4.5) = 4), two classes
    model = AutoModelForSequenceClassification.from_pretrained(
        out / "model",
        trust_remote_code=True,  # mean pooling: the folder's own few lines of code
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert type(model).__name__ == "MeanPoolingClassifier"
    assert (out / "model" / "mean_pooling_model.py").is_file()
    batch = tokenizer(
        texts, padding="max_length", truncation=True, max_length=32, return_tensors="pt"
    )
    with torch.no_grad():
        after = model(**batch).logits.softmax(-1)
    assert torch.allclose(after, torch.tensor([r["probabilities"] for r in before]), atol=1e-4)
    classify = pipeline(
        "text-classification", model=str(out / "model"), device="cpu", trust_remote_code=True
    )
    labels = [r["label"] for r in classify(texts, truncation=True, max_length=32)]
    assert labels == [r["predicted"] for r in before]
    assert [r["label"] for r in Predictor(out).predict(texts)] == labels


def test_lora_run_saves_a_peft_adapter_equal_to_the_merged_model(text_run):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from coursekit.heads import text_classifier
    from coursekit.models import load_tokenizer

    csv, out = text_run
    config = json.loads((out / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["target_modules"] == ["query", "value"] and config["modules_to_save"] == ["head"]
    base = text_classifier(2)  # the text model of lessons 05-07, as finetune trains it
    peft_model = PeftModel.from_pretrained(base, out / "adapter").eval()
    merged = AutoModelForSequenceClassification.from_pretrained(
        out / "model", trust_remote_code=True
    ).eval()
    texts = load_data(csv).items[:8]
    batch = load_tokenizer("minilm")(
        texts, padding=True, truncation=True, max_length=32, return_tensors="pt"
    )
    with torch.no_grad():
        a, b = peft_model(**batch), merged(**batch).logits
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()


def test_exercise_07_q2_predicting_with_onnxruntime_alone(image_run):
    import onnxruntime as ort
    from PIL import Image, ImageOps

    from coursekit.exercises import Wrong, check

    root, result = image_run
    files = sorted((root / "Sneaker").glob("*.png"))[:6]
    run = json.loads((result.out_dir / "run.json").read_text(encoding="utf-8"))
    session = ort.InferenceSession(str(result.out_dir / "model.onnx"))

    def labels(paths, scale=255.0):
        s = run["image_size"]
        fit = [
            ImageOps.fit(Image.open(p).convert("RGB"), (s, s), Image.Resampling.BILINEAR)
            for p in paths
        ]
        x = np.stack([np.asarray(f) for f in fit]).astype(np.float32).transpose(0, 3, 1, 2) / scale
        return [run["classes"][i] for i in session.run(["logits"], {"pixels": x})[0].argmax(1)]

    assert "all 6 labels match" in check("07.q2", labels, out_dir=result.out_dir, files=files)
    with pytest.raises(Wrong, match="class numbers"):
        check("07.q2", lambda p: [0] * len(p), out_dir=result.out_dir, files=files)
    with pytest.raises(Wrong, match="not a function"):
        check("07.q2", labels(files), out_dir=result.out_dir, files=files)


def test_early_stopping_reaches_fit_and_the_text_model_is_the_course_one(tmp_path, monkeypatch):
    """finetune hands `early_stopping` to fit (which keeps the best epoch either way), and a
    text run trains lessons 05-06's classifier: mean pooling, LoRA on query/value + the head."""
    require_asset("tweets")
    require_asset("minilm")
    import importlib

    run_module = importlib.import_module("coursekit.finetune.run")
    from coursekit.heads import TextClassifier
    from coursekit.training.history import History

    seen = {}

    def fake_fit(model, *args, **kwargs):
        seen.update(kwargs, model=model)
        return History(epochs=[{"epoch": 1, "train_loss": 0.5, "val_loss": 0.5}])

    monkeypatch.setattr(run_module, "fit", fake_fit)
    csv = tweets_csv(tmp_path / "t.csv", per_class=80, binary=True)
    result = finetune(csv, tmp_path / "out", epochs=1, max_length=16, early_stopping=2)
    assert seen["early_stopping"] == 2 and seen["restore_best"] is True
    assert isinstance(seen["model"], TextClassifier) and seen["model"].pooling == "mean"
    # the optimizer is the course's one (training.optim.make_optimizer): fused where torch can
    from coursekit.runtime.device import adamw_kwargs

    fused = adamw_kwargs(seen["device"]).get("fused", False)
    assert bool(seen["optimizer"].defaults["fused"]) == fused
    assert seen["optimizer"].defaults["weight_decay"] == 0.01
    assert result.choices["trainable"].startswith("74,498 of")  # 80 per class (56 to train): LoRA
