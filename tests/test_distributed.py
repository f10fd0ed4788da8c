"""Scaling out: `fit` under torchrun / accelerate launch, checked against one process.

The slow tests fine-tune the real MiniLM on a tiny BBC News subset (8 articles per topic, 32
tokens, 2 epochs, dropout off) with 2 CPU processes (gloo backend) and compare with a single
process trained with the same effective batch size (2 x 4 = 8), seed and data order.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from coursekit.finetune_script import build_data, build_model, main, parse_args, weights_summary
from coursekit.training import distributed, evaluate, fit, load_weights

from conftest import require_asset
from helpers import blobs, mlp

# Two processes x 4 articles = one process x 8 articles per optimizer step.
RUN = "--per-class 8 --val-per-class 7 --epochs 2 --max-length 32 --lr 1e-4 --dropout 0 --quiet"
PER_PROCESS_BATCH = 4
# Largest allowed distance between the two runs' final weights, relative to how far training
# moved them (|w_2proc - w_1proc| / |w_1proc - w_start|). Measured: 1.6e-4 for the correct setup,
# 0.60 for one process with the per-process batch size (twice the steps, half the batch); 1e-2
# sits well between the two (in a 1-epoch variant, twice the learning rate was 1.02 away).
WEIGHTS_TOL = 1e-2
LOSS_TOL = 1e-3  # on val / train loss (measured differences: ~1e-7; wrong setups: 0.2 to 0.4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    """One thread per process (2 processes on 2 cores), no busy-waiting, no stray launcher vars."""
    env = {k: v for k, v in os.environ.items() if k not in distributed.WORLD_SIZE_VARS}
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", TOKENIZERS_PARALLELISM="false")
    return env


def _launch(launcher: list[str], out: Path, extra: str = "") -> tuple[dict, str]:
    cmd = [sys.executable, "-m", *launcher, "-m", "coursekit.finetune_script", "--out", str(out)]
    cmd += (RUN + f" --batch-size {PER_PROCESS_BATCH} " + extra).split()
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-4000:]}"
    return json.loads((out / "results.json").read_text()), output


def _run_here(out: Path, batch_size: int, extra: str = "") -> dict:
    """The script in this (single) process."""
    return main(["--out", str(out), *(RUN + f" --batch-size {batch_size} " + extra).split()])


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(out / "last.safetensors").items() if k.startswith("model/")}


def _relative_distance(a: Path, b: Path, update_norm: float) -> float:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    sq = sum(
        (wa[k].double() - wb[k].double()).pow(2).sum() for k in wa if wa[k].is_floating_point()
    )
    return float(sq) ** 0.5 / update_norm


# --- fast: launch detection and the script's command line -------------------------------------


def test_launch_is_detected_from_the_launchers_environment(monkeypatch):
    for var in distributed.WORLD_SIZE_VARS:
        monkeypatch.delenv(var, raising=False)
    assert (distributed.num_processes(), distributed.launched()) == (1, False)
    assert distributed.is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "1")  # e.g. `torchrun --nproc_per_node 1`: one process
    assert not distributed.launched()
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert (distributed.num_processes(), distributed.launched()) == (4, True)
    monkeypatch.setenv("WORLD_SIZE", "four")
    with pytest.raises(ValueError, match="WORLD_SIZE"):
        distributed.num_processes()


def test_fit_in_one_process_never_builds_an_accelerator(monkeypatch):
    for var in distributed.WORLD_SIZE_VARS:
        monkeypatch.delenv(var, raising=False)
    history = fit(mlp(), blobs(), blobs(seed=1), epochs=2, lr=1e-2, progress=False)
    assert len(history.epochs) == 2
    assert distributed._accelerator is None


def test_script_flags_are_checked(tmp_path, capsys):
    args = parse_args(["--out", str(tmp_path), "--batch-size", "4"])
    assert (args.batch_size, args.per_class, args.val_per_class, args.dropout) == (
        4,
        40,
        None,
        None,
    )
    for bad in (["--batch-size", "0"], ["--lr", "-1"], ["--dropout", "1.5"], []):
        with pytest.raises(SystemExit):
            parse_args((["--out", str(tmp_path)] if bad else []) + bad)
    assert "must be a positive integer" in capsys.readouterr().err


# --- slow: the real model on 2 processes vs 1 ----------------------------------------------------


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The script on 2 CPU processes via torchrun (the gloo backend): (out dir, results)."""
    require_asset("minilm")
    require_asset("bbc_news")
    out = tmp_path_factory.mktemp("two_processes")
    results, _ = _launch(["torch.distributed.run", "--standalone", "--nproc_per_node", "2"], out)
    assert results["processes"] == 2
    assert results["effective_batch"] == 2 * PER_PROCESS_BATCH
    return out, results


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The script in one process with the same effective batch size: (out dir, results)."""
    require_asset("minilm")
    require_asset("bbc_news")
    out = tmp_path_factory.mktemp("one_process")
    results = _run_here(out, batch_size=2 * PER_PROCESS_BATCH)
    assert results["processes"] == 1
    return out, results


@pytest.mark.slow
@pytest.mark.assets
def test_two_processes_match_one_process_with_the_same_effective_batch(two_processes, one_process):
    """Same seed, same data, same effective batch: the runs agree closely but not bit for bit.

    Each optimizer step sees the same 8 articles in both runs (the script's seeded shuffling is
    shared by both processes, and process k takes batches k, k+2, ...), and DDP averages the two
    4-article gradients into the 8-article one. What differs is float arithmetic: the
    gradient is summed in another order (two half-batch means, then gloo's all-reduce, against
    one 8-article mean), so results differ in the last bits, and Adam, which divides by the
    gradient's running RMS, enlarges such differences where gradients are tiny. Dropout is off:
    each process would draw its own masks, which no single process can reproduce.
    """
    (two, r2), (one, r1) = two_processes, one_process
    assert r2["effective_batch"] == r1["effective_batch"] == 8
    assert r2["train_examples"] == r1["train_examples"] == 40
    assert r2["val_examples"] == r1["val_examples"] == 35  # no padding duplicates counted
    distance = _relative_distance(two, one, r1["update_norm"])
    assert distance < WEIGHTS_TOL, f"weights differ by {distance:.3g} of the update"
    for e2, e1 in zip(r2["epochs"], r1["epochs"], strict=True):
        assert abs(e2["train_loss"] - e1["train_loss"]) < LOSS_TOL
        assert abs(e2["val_loss"] - e1["val_loss"]) < LOSS_TOL
        assert abs(e2["val_accuracy"] - e1["val_accuracy"]) <= 1 / 35 + 1e-6  # one article
    assert abs(r2["weights"]["norm"] - r1["weights"]["norm"]) < 1e-3
    assert r1["val_accuracy"] > 0.5  # it learned: 5 topics, chance is 0.2


@pytest.mark.slow
@pytest.mark.assets
def test_the_tolerance_catches_a_wrong_setup(one_process, tmp_path):
    """One process with the per-process batch size (4: what each process would do alone, without
    combining gradients) takes twice as many half-size steps: it must fall outside the tolerance
    that the 2-process run meets."""
    out, r1 = one_process
    wrong = _run_here(tmp_path, batch_size=PER_PROCESS_BATCH)
    distance = _relative_distance(tmp_path, out, r1["update_norm"])
    assert distance > 10 * WEIGHTS_TOL, f"a wrong setup is only {distance:.3g} away"
    assert abs(wrong["val_loss"] - r1["val_loss"]) > 10 * LOSS_TOL


@pytest.mark.slow
@pytest.mark.assets
def test_a_multi_process_checkpoint_loads_and_scores_the_same_in_one_process(two_processes):
    out, results = two_processes
    args = parse_args(["--out", str(out), *RUN.split()])
    _, val, classes = build_data(args)
    model = build_model(len(classes), seed=1)  # another head: the checkpoint must replace it
    load_weights(out / "best.safetensors", model)  # both load: no DDP "module." prefixes
    load_weights(out / "last.safetensors", model)
    assert weights_summary(model.state_dict())["sha256"] == results["weights"]["sha256"]
    scores = evaluate(model, val, "cpu", precision="fp32")
    assert abs(scores["loss"] - results["val_loss"]) < 1e-4
    assert scores["accuracy"] == pytest.approx(results["val_accuracy"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.assets
def test_two_processes_resume_under_accelerate_launch(two_processes, tmp_path):
    """`accelerate launch` (torchrun underneath) on a copy of the finished run, one more epoch:
    every process loads last.safetensors and carries on from epoch 3."""
    out, results = two_processes
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    port = str(_free_port())
    launcher = ["accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launcher += ["--num_cpu_threads_per_process", "1", "--main_process_port", port]
    resumed, output = _launch(launcher, tmp_path, extra="--epochs 3")
    assert output.count("Resumed from") == 1  # printed by the main process only
    assert resumed["processes"] == 2
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2, 3]
    assert resumed["epochs"][:2] == results["epochs"]
    assert resumed["weights"]["sha256"] != results["weights"]["sha256"]  # it trained on
