import os
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from coursekit.training import (
    Callback,
    CheckpointError,
    evaluate,
    fit,
    load_weights,
    read_checkpoint_state,
)

from helpers import blobs, mlp


def test_loss_decreases_and_accuracy_rises_on_a_learnable_problem():
    model = mlp()
    history = fit(model, blobs(), blobs(seed=1), epochs=5, lr=1e-2, progress=False)
    losses = history.metric("train_loss")
    assert losses[-1] < 0.5 * losses[0]
    assert history.last["val_accuracy"] > 0.9
    assert len(history.steps) == 5 * 8  # 256 examples / batch 32, one loss per step


class _Interrupt(Callback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_end(self, state):
        if state.step == self.at_step:
            raise KeyboardInterrupt


def test_resume_after_interruption_reproduces_the_uninterrupted_run_exactly(tmp_path):
    kwargs = dict(epochs=4, lr=1e-2, progress=False, batch_size=16)  # dropout + shuffling use RNG
    torch.manual_seed(0)
    full_model = mlp()
    full = fit(full_model, blobs(), blobs(seed=1), **kwargs)

    torch.manual_seed(0)
    model = mlp()
    with pytest.raises(KeyboardInterrupt):  # dies in the middle of epoch 3
        fit(
            model,
            blobs(),
            blobs(seed=1),
            checkpoint_dir=tmp_path,
            callbacks=[_Interrupt(40)],
            **kwargs,
        )
    torch.manual_seed(99)  # a new session: other RNG state, other initial weights
    resumed_model = mlp(seed=3)
    resumed = fit(resumed_model, blobs(), blobs(seed=1), checkpoint_dir=tmp_path, **kwargs)

    for a, b in zip(
        full_model.state_dict().values(), resumed_model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert resumed.steps == full.steps
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in full.epochs]
    assert [{k: v for k, v in e.items() if k != "seconds"} for e in resumed.epochs] == strip


def test_gradient_accumulation_matches_the_big_batch():
    data = blobs(64)
    big, small = mlp(dropout=0.0), mlp(dropout=0.0)
    fit(
        big,
        DataLoader(data, batch_size=16),
        epochs=1,
        optimizer=torch.optim.SGD(big.parameters(), lr=0.1),
        progress=False,
    )
    fit(
        small,
        DataLoader(data, batch_size=8),
        epochs=1,
        grad_accum_steps=2,
        optimizer=torch.optim.SGD(small.parameters(), lr=0.1),
        progress=False,
    )
    for a, b in zip(big.parameters(), small.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_early_stopping_and_best_checkpoint(tmp_path):
    model = mlp()
    history = fit(
        model,
        blobs(),
        blobs(seed=1),
        epochs=10,
        lr=0.0,
        early_stopping=2,
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert len(history.epochs) == 3  # best at epoch 1, then 2 epochs without improvement
    assert (tmp_path / "best.safetensors").exists() and (tmp_path / "last.safetensors").exists()


def test_restore_best_puts_back_the_best_epoch_weights():
    class Snapshot(Callback):
        def __init__(self):
            self.weights = []

        def on_epoch_end(self, state):
            self.weights.append({k: v.clone() for k, v in state.model.state_dict().items()})

    model, snap = mlp(), Snapshot()
    history = fit(
        model,
        blobs(),
        blobs(seed=1),
        epochs=4,
        lr=0.3,
        restore_best=True,
        callbacks=[snap],
        progress=False,
    )  # lr too high: val loss jumps around
    best_epoch = min(range(4), key=lambda i: history.epochs[i]["val_loss"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, snap.weights[best_epoch][k])


def test_clipping_schedulers_and_param_groups_are_used():
    model = mlp()
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.01},
            {"params": model[3].parameters(), "lr": 0.1},
        ]
    )
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = fit(
        model,
        blobs(),
        epochs=2,
        optimizer=opt,
        scheduler=sched,
        scheduler_interval="epoch",
        max_grad_norm=0.5,
        progress=False,
    )
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0025, 0.025])
    assert history.metric("lr") == pytest.approx([0.005, 0.0025])


def test_dict_batches_for_hugging_face_models():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    model = BertForSequenceClassification(cfg)
    ids = torch.randint(5, 50, (64, 8))
    labels = (ids[:, 0] > 27).long()  # learnable from the first token
    batches = [
        {
            "input_ids": ids[i : i + 16],
            "attention_mask": torch.ones(16, 8, dtype=torch.long),
            "labels": labels[i : i + 16],
        }
        for i in range(0, 64, 16)
    ]
    history = fit(model, batches, batches, epochs=8, lr=3e-3, progress=False)
    assert history.last["train_loss"] < history.epochs[0]["train_loss"]
    assert evaluate(model, batches)["accuracy"] > 0.8


# --- clear errors on bad input --------------------------------------------------------------


def test_labels_outside_the_models_output_range():
    x, y = torch.randn(32, 10), torch.randint(0, 5, (32,))
    with pytest.raises(ValueError, match=r"0\.\.2 for a model with 3 outputs.*labels 0\.\.4"):
        fit(mlp(classes=3), TensorDataset(x, y), progress=False)


def test_label_error_also_caught_in_later_batches():
    x, y = torch.randn(64, 10), torch.zeros(64, dtype=torch.long)
    y[40] = 7  # only the third batch is bad
    with pytest.raises(ValueError, match="3 outputs"):
        fit(mlp(), DataLoader(TensorDataset(x, y), batch_size=16), progress=False)


def test_empty_dataset():
    empty = TensorDataset(torch.empty(0, 10), torch.empty(0, dtype=torch.long))
    with pytest.raises(ValueError, match="train_data is empty"):
        fit(mlp(), empty, progress=False)


def test_mismatched_batch_shapes():
    batches = [(torch.randn(8, 10), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(ValueError, match="mismatched"):
        fit(mlp(), batches, progress=False)


def test_wrong_input_shape_names_the_batch_shape():
    with pytest.raises(ValueError, match=r"first batch \(inputs \(32, 7\)\)"):
        fit(
            mlp(dim=10),
            TensorDataset(torch.randn(32, 7), torch.zeros(32, dtype=torch.long)),
            progress=False,
        )


def test_float_labels_and_fully_frozen_models():
    with pytest.raises(ValueError, match="integer class indices"):
        fit(mlp(), TensorDataset(torch.randn(8, 10), torch.zeros(8)), progress=False)
    frozen = mlp().requires_grad_(False)
    with pytest.raises(ValueError, match="frozen"):
        fit(frozen, blobs(), progress=False)


def test_resuming_with_a_different_model_is_refused(tmp_path):
    fit(mlp(classes=3), blobs(), epochs=1, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="different model"):
        fit(mlp(classes=4), blobs(classes=4), epochs=2, checkpoint_dir=tmp_path, progress=False)


def test_nothing_is_written_outside_the_checkpoint_dir(tmp_path, monkeypatch):
    cwd, ckpt = tmp_path / "cwd", tmp_path / "ckpt"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    home_before = set(os.listdir(Path.home()))
    fit(mlp(), blobs(), blobs(seed=1), epochs=2, checkpoint_dir=ckpt, progress=False)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["ckpt/best.safetensors", "ckpt/last.safetensors"]
    assert set(os.listdir(Path.home())) == home_before


# --- the loop's failure modes ----------------------------------------------------------------


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resuming_with_another_optimizer_class_is_refused_before_touching_the_model(tmp_path):
    fit(mlp(), blobs(), epochs=1, checkpoint_dir=tmp_path, progress=False)  # default AdamW
    model = mlp(seed=4)
    before = _weights(model)
    sgd = torch.optim.SGD(model.parameters(), lr=1e-3)
    with pytest.raises(CheckpointError, match="optimizer class: checkpoint AdamW, now SGD") as err:
        fit(model, blobs(), epochs=2, optimizer=sgd, checkpoint_dir=tmp_path, progress=False)
    assert "start afresh" in str(err.value) and "last.safetensors" in str(err.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_resuming_with_another_learning_rate_names_the_difference(tmp_path):
    fit(mlp(), blobs(), epochs=1, lr=1e-2, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=r"lr: checkpoint 0\.01, now 0\.001"):
        fit(mlp(), blobs(), epochs=2, lr=1e-3, checkpoint_dir=tmp_path, progress=False)
    history = fit(mlp(), blobs(), epochs=2, lr=1e-2, checkpoint_dir=tmp_path, progress=False)
    assert [e["epoch"] for e in history.epochs] == [1, 2]  # the same settings resume


def test_resuming_with_validation_data_added_is_reported(tmp_path):
    fit(mlp(), blobs(), epochs=1, checkpoint_dir=tmp_path, progress=False)  # monitors train_loss
    with pytest.raises(CheckpointError, match="monitor: checkpoint 'train_loss', now 'val_loss'"):
        fit(mlp(), blobs(), blobs(seed=1), epochs=2, checkpoint_dir=tmp_path, progress=False)
    history = fit(  # naming the checkpoint's monitor resumes
        mlp(), blobs(), blobs(seed=1), epochs=2, monitor="train_loss", checkpoint_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    assert "val_loss" in history.last and "val_loss" not in history.epochs[0]


def test_early_stopping_state_survives_a_resume(tmp_path):
    kwargs = dict(epochs=10, lr=0.0, early_stopping=2, progress=False)  # never improves after 1
    assert len(fit(mlp(), blobs(), blobs(seed=1), **kwargs).epochs) == 3
    with pytest.raises(KeyboardInterrupt):  # dies in epoch 3, after two checkpoints
        fit(
            mlp(), blobs(), blobs(seed=1), checkpoint_dir=tmp_path,
            callbacks=[_Interrupt(8 * 2 + 3)], **kwargs,
        )  # fmt: skip
    saved = read_checkpoint_state(tmp_path / "last.safetensors")["state"]
    assert saved["callbacks"]["EarlyStopping"]["wait"] == 1
    resumed = fit(mlp(), blobs(), blobs(seed=1), checkpoint_dir=tmp_path, **kwargs)
    assert len(resumed.epochs) == 3  # stops where the uninterrupted run stopped


def test_a_nan_loss_stops_at_that_step_and_keeps_the_checkpoint_finite(tmp_path):
    x, y = blobs().tensors
    batches = [(x[i : i + 32].clone(), y[i : i + 32]) for i in range(0, 256, 32)]
    fit(mlp(), batches, epochs=1, checkpoint_dir=tmp_path, progress=False)
    batches[2][0][5] = float("nan")  # from now on, batch 3 of 8 holds a NaN
    with pytest.raises(FloatingPointError, match=r"epoch 2, batch 3 .*inputs hold NaN") as err:
        fit(mlp(), batches, epochs=2, checkpoint_dir=tmp_path, progress=False)
    assert "learning rate" in str(err.value) and "precision" in str(err.value)
    saved = read_checkpoint_state(tmp_path / "last.safetensors")["state"]
    assert saved["epoch"] == 0  # the NaN epoch was never saved
    restored = load_weights(tmp_path / "last.safetensors", mlp())
    assert all(torch.isfinite(v).all() for v in restored.state_dict().values())


def test_a_diverging_learning_rate_is_named_as_a_cause():
    with pytest.raises(FloatingPointError, match="inputs are all finite.*learning rate"):
        fit(mlp(), blobs(), epochs=3, lr=1e30, progress=False)


def test_string_labels_numpy_batches_and_column_labels_get_clear_errors():
    x = torch.randn(8, 10)
    with pytest.raises(TypeError, match="labels are strings.*class indices"):
        fit(mlp(), [(x, ["cat"] * 8)], progress=False)
    with pytest.raises(TypeError, match="numpy array.*torch.from_numpy"):
        fit(mlp(), [(x.numpy(), torch.zeros(8, dtype=torch.long))], progress=False)
    with pytest.raises(ValueError, match=r"shape \(8, 1\).*view\(-1\)"):
        fit(mlp(), [(x, torch.zeros(8, 1, dtype=torch.long))], progress=False)


def test_an_exhausted_iterator_without_len_is_a_clear_error():
    batches = iter([(torch.randn(8, 10), torch.zeros(8, dtype=torch.long))])
    with pytest.raises(ValueError, match="yielded no batches in epoch 2.*DataLoader"):
        fit(mlp(), batches, epochs=2, progress=False)  # the second pass finds nothing
    with pytest.raises(ValueError, match="evaluation data yielded no batches"):
        evaluate(mlp(), iter([]))


def test_stop_now_ends_training_after_that_step():
    class StopAt(Callback):
        def on_step_end(self, state):
            state.stop_now = state.step == 3

    history = fit(mlp(), blobs(), epochs=4, callbacks=[StopAt()], progress=False)
    assert len(history.steps) == 3 and len(history.epochs) == 1


def test_a_monitor_that_is_not_recorded_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"monitor='val_accuracy' is not in the epoch record.*val_data"
    ):
        fit(mlp(), blobs(), epochs=2, monitor="val_accuracy", early_stopping=1, progress=False)
