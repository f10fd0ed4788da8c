import pytest
import torch

from coursekit.measure.batch_size import find_batch_size, is_out_of_memory, training_step_probe

from helpers import blobs, mlp


def fake_gpu(capacity: int, error=None):
    """A try that runs out of memory above `capacity` examples; records the sizes tried."""
    tried = []

    def try_batch(n: int) -> None:
        tried.append(n)
        if n > capacity:
            raise error or torch.cuda.OutOfMemoryError(f"CUDA out of memory trying {n}")

    return try_batch, tried


def test_halves_on_cuda_oom_until_it_fits():
    try_batch, tried = fake_gpu(capacity=40)
    assert find_batch_size(try_batch, start=256, verbose=False) == 32
    assert tried == [256, 128, 64, 32]


def test_mps_style_runtime_error_counts_as_out_of_memory():
    err = RuntimeError("MPS backend out of memory (MPS allocated: 8 GB)")
    assert is_out_of_memory(err) and not is_out_of_memory(RuntimeError("shape mismatch"))
    try_batch, tried = fake_gpu(capacity=100, error=err)
    assert find_batch_size(try_batch, start=512, verbose=False) == 64


def test_start_that_fits_is_kept():
    try_batch, tried = fake_gpu(capacity=1000)
    assert find_batch_size(try_batch, start=128, verbose=False) == 128 and tried == [128]


def test_other_errors_are_not_swallowed():
    def broken(n):
        raise ValueError("labels out of range")

    with pytest.raises(ValueError, match="labels"):
        find_batch_size(broken, start=64, verbose=False)


def test_clear_error_when_nothing_fits():
    try_batch, tried = fake_gpu(capacity=3)
    with pytest.raises(RuntimeError, match="even at batch size 4"):
        find_batch_size(try_batch, start=32, minimum=4, verbose=False)
    assert tried == [32, 16, 8, 4]
    with pytest.raises(ValueError, match="minimum"):
        find_batch_size(try_batch, start=8, minimum=16)


def test_training_probe_runs_a_real_step_without_changing_weights():
    model, ds = mlp(), blobs(64)
    before = [p.detach().clone() for p in model.parameters()]
    probe = training_step_probe(model, lambda n: ds[:n], device="cpu", precision="fp32")
    assert find_batch_size(probe, start=64, verbose=False) == 64
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert all(p.grad is None for p in model.parameters())
