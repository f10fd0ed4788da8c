import pytest
import torch

from coursekit.runtime import config


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
