import pytest
import torch

from coursekit import config


@pytest.fixture(autouse=True)
def _reset(monkeypatch):
    monkeypatch.delenv("COURSEKIT_MODE", raising=False)
    config.set_mode(None)
    yield
    config._override = None


def test_default_is_quick_without_gpu_and_full_with_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.get_mode() == "quick"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_mode() == "full"


def test_environment_variable_and_python_switch(monkeypatch):
    monkeypatch.setenv("COURSEKIT_MODE", "FULL")
    assert config.get_mode() == "full"
    assert config.set_mode("quick") == "quick"  # Python wins over the environment
    assert config.settings().image_size < config.settings("full").image_size


def test_bad_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSEKIT_MODE", "fast")
    with pytest.raises(ValueError, match="quick"):
        config.get_mode()
    with pytest.raises(ValueError):
        config.set_mode("huge")


def test_show_mode_prints_mode_and_how_to_switch(capsys):
    config.set_mode("quick")
    s = config.show_mode()
    out = capsys.readouterr().out
    assert s.mode == "quick" and "QUICK" in out and "COURSEKIT_MODE=full" in out


def test_full_mode_is_bigger_in_every_size():
    q, f = config.settings("quick"), config.settings("full")
    assert f.image_size > q.image_size and f.train_per_class > q.train_per_class
    assert f.epochs >= q.epochs and max(f.shots) > max(q.shots)


def test_max_steps_reads_the_environment_and_caps_loops(monkeypatch):
    monkeypatch.delenv("COURSEKIT_MAX_STEPS", raising=False)
    assert config.max_steps() is None and list(config.capped(range(5))) == [0, 1, 2, 3, 4]
    monkeypatch.setenv("COURSEKIT_MAX_STEPS", "2")
    assert config.max_steps() == 2 and list(config.capped(range(5))) == [0, 1]
    monkeypatch.setenv("COURSEKIT_MAX_STEPS", "two")
    with pytest.raises(ValueError, match="whole number"):
        config.max_steps()


def test_max_steps_cuts_fit_evaluation_and_extraction_but_keeps_shapes(monkeypatch):
    from coursekit.features import extract_features
    from coursekit.training import fit, predict

    x, y = torch.randn(80, 4), torch.arange(80) % 2
    data = torch.utils.data.TensorDataset(x, y)
    model = torch.nn.Linear(4, 2)
    monkeypatch.setenv("COURSEKIT_MAX_STEPS", "3")
    history = fit(model, data, epochs=4, batch_size=8, progress=False, device="cpu")
    assert len(history.steps) == 3 and len(history.epochs) == 1
    logits, labels = predict(model, data, device="cpu", batch_size=16)
    assert logits.shape == (80, 2) and torch.equal(labels, y)  # full shapes ...
    assert logits[:48].any() and not logits[48:].any()  # ... the model ran on 3 batches
    features = extract_features(lambda b: b * 2, x, "capped-check", batch_size=16)
    assert features.shape == (80, 4) and torch.equal(features[:48], 2 * x[:48])
    assert not features[48:].any()  # rows past the cap are zeros, and never cached:
    monkeypatch.delenv("COURSEKIT_MAX_STEPS")
    assert torch.equal(extract_features(lambda b: b * 2, x, "capped-check"), 2 * x)
