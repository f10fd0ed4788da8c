"""The benchmark harness at smoke sizes: every section runs and writes sane JSON and markdown.

Smoke figures are not measurements to quote; these tests check the harness, the arithmetic it
reports (AdamW state = 8 bytes per trainable parameter, exactly) and the rendering.
"""

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ is not installed

from benchmarks import course as course_section  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks.run import main  # noqa: E402

from conftest import require_asset


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    for asset in ("minilm", "efficientnet_lite0", "bbc_news", "fashion_mnist"):
        require_asset(asset)
    out = tmp_path_factory.mktemp("bench")
    main(
        [
            "--smoke",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--only",
            "loops,caching,strategies,data,gpu,text",
        ]
    )
    return out, json.loads((out / "cpu-smoke.json").read_text())


def test_every_section_ran_and_records_its_conditions(smoke):
    out, res = smoke
    assert set(res["sections"]) == {"loops", "caching", "strategies", "data", "gpu", "text"}
    for name, sec in res["sections"].items():
        assert "error" not in sec, (name, sec.get("error"))
        assert sec["conditions"]["seconds"] > 0 and sec["conditions"]["other_cores"] >= 0
    assert res["smoke"] is True and res["machine"]["torch"]
    md = (out / "cpu-smoke.md").read_text()
    for title in ("Loop overhead", "Frozen-feature caching", "Cost of each strategy", "Data path"):
        assert title in md
    assert "The text track at full length" in md and "test accuracy ± SE" in md


def test_text_section_runs_lesson_05s_three_strategies(smoke):
    """The text section trains lesson 05's strategies with fit and tests each (smoke sizes:
    20 test articles), with the trainable counts of MiniLM's head, LoRA r=8 and everything."""
    text = smoke[1]["sections"]["text"]
    by = {r["strategy"]: r for r in text["strategies"]}
    assert by["head only"]["trainable"] == 1925  # 384 x 5 + 5
    assert by["LoRA r=8"]["trainable"] == 75653  # 6 layers x 2 x 8 x (384 + 384) + the head
    assert by["full fine-tune"]["trainable"] > 22_000_000
    for r in by.values():
        assert r["steps"] >= 1 and 0 <= r["accuracy"] <= 1 and r["accuracy_se"] > 0
    assert text["recipe"]["articles"]["test"] == 20 and len(text["verdicts"]) == 2


def test_optimizer_state_is_exactly_eight_bytes_per_trainable_parameter(smoke):
    rows = [r for r in smoke[1]["sections"]["strategies"]["rows"] if "note" not in r]
    assert {r["strategy"] for r in rows} >= {"full fine-tuning", "head only", "LoRA r=8"}
    for r in rows:
        assert r["optimizer_state_bytes"] == 8 * r["trainable"], r
    by = {(r["model"], r["strategy"]): r for r in rows}
    full, head = by["MiniLM-L6", "full fine-tuning"], by["MiniLM-L6", "head only"]
    assert full["trainable"] == 22_715_141 and head["trainable"] == 384 * 5 + 5
    lora4, lora8 = by["MiniLM-L6", "LoRA r=4"], by["MiniLM-L6", "LoRA r=8"]
    # query and value in 6 layers, r * (384 + 384) each, plus the 1,925-parameter head
    assert lora8["trainable"] - lora4["trainable"] == 6 * 2 * 4 * (384 + 384)


def test_loops_caching_data_and_gpu_report_sane_values(smoke):
    sec = smoke[1]["sections"]
    for row in sec["loops"]["rows"]:
        for k in ("plain", "coursekit", "trainer", "coursekit_fused"):
            assert row[f"{k}_us_per_step"] > 0
        assert row["coursekit_over_plain"] == pytest.approx(
            row["coursekit_us_per_step"] / row["plain_us_per_step"], rel=1e-3
        )
    assert {r["adamw"] for r in sec["loops"]["adamw"]} >= {"for-loop", "foreach"}
    for row in sec["caching"]["rows"]:
        assert row["speedup_first_run"] == pytest.approx(
            row["backbone_every_epoch_s"] / row["cached_first_run_s"], rel=0.02
        )
    assert {r["path"] for r in sec["data"]["rows"]} == {
        "DataLoader, 0 workers",
        "DataLoader, 2 workers",
        "in-memory batches",
    }
    gpu = sec["gpu"]
    assert gpu["status"].startswith("smoke")  # the GPU code path ran on the CPU
    variants = {(r["model"], r["variant"]) for r in gpu["rows"]}
    assert ("EfficientNet-Lite0", "amp + channels_last") in variants
    assert all(r["precision"] in ("fp32", "bf16") and r["ms_per_step"] > 0 for r in gpu["rows"])


def test_without_a_gpu_the_gpu_section_says_not_measured():
    import torch

    from benchmarks import common, gpu

    res = gpu.run(common.sizes(False), torch.device("cpu"))
    assert res["status"] == "not measured: no GPU" and "rows" not in res
    assert "not measured: no GPU" in report._gpu(res)


def test_course_section_times_each_notebook_with_cold_caches(tmp_path, monkeypatch):
    """Each notebook runs with an empty `COURSEKIT_DATA` (a fresh clone's caches), its CPU
    seconds and the load are recorded, and the caller's environment comes back unchanged."""
    code = (
        "import os\n"
        "data = os.environ['COURSEKIT_DATA']\n"
        "assert os.listdir(data) == [] and 'coursekit-cold-' in data, data\n"
        "sum(i * i for i in range(3_000_000))"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "00_tiny.ipynb")
    monkeypatch.setenv("COURSEKIT_DATA", str(tmp_path / "warm"))
    res = course_section.run("quick", root=tmp_path)
    assert os.environ["COURSEKIT_DATA"] == str(tmp_path / "warm")
    assert res["complete_course"] and res["all_ok"] and res["cold_caches"]
    assert res["targets_met"] is (None if res["contended"] else True)  # no verdict under load
    (row,) = res["rows"]
    assert row["notebook"] == "00_tiny" and row["limit_s"] == 180 and row["within_limit"]
    assert 0 < res["total_seconds"] < 180
    assert 0.1 < row["cpu_seconds"] < 2 * row["seconds"] + 1  # the kernel's CPU, 2 cores at most
    assert 0.01 < row["peak_rss_gb"] < res["ram_budget_gb"]  # a kernel: tens of MB+
    assert "peak RSS GB" in report._course(res) and "CPU s" in report._course(res)


def test_course_budget_is_never_judged_under_load():
    row = {"notebook": "08_instruction_tuning", "status": "ok", "seconds": 200.0}
    assert course_section.limit_for("08_instruction_tuning") == 240
    assert course_section.limit_for("04_layer_freezing") == 180
    res = {"mode": "quick", "rows": [row], "all_ok": True, "total_seconds": 200.0,
           "complete_course": True, "contended": True, "targets_met": None}  # fmt: skip
    text = report._course(res)
    assert "Taken under load" in text and "Targets" not in text


def test_update_doc_replaces_only_the_marked_part(tmp_path, smoke):
    doc = tmp_path / "perf.md"
    doc.write_text(f"# Prose\n\n{report.BEGIN}\nold\n{report.END}\n\nMore prose.\n")
    report.update_doc(doc, smoke[1])
    text = doc.read_text()
    assert text.startswith("# Prose") and text.endswith("More prose.\n") and "old" not in text
    assert "Loop overhead" in text
    (tmp_path / "bare.md").write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        report.update_doc(tmp_path / "bare.md", smoke[1])


def test_readme_quotes_the_measured_text_results():
    """The README's full-mode text results are the committed benchmark's numbers (section 7),
    each accuracy with its standard error, and the verdict between LoRA and full fine-tuning
    (which lesson 05's prose quotes too)."""
    from pathlib import Path

    from coursekit.claims import compare

    root = Path(__file__).resolve().parents[1]
    text = json.loads((root / "benchmarks/results/cpu.json").read_text())["sections"]["text"]
    readme = " ".join((root / "README.md").read_text().split())
    by = {r["strategy"]: r for r in text["strategies"]}
    for strategy, label in (("full fine-tune", "full fine-tuning"), ("LoRA r=8", "LoRA r=8"),
                            ("head only", "head only")):  # fmt: skip
        r = by[strategy]
        assert f"{label} {r['accuracy']:.3f} ± {r['accuracy_se']:.3f}" in readme, label
    frozen = text["frozen_head_all_articles"]
    assert f"{frozen['accuracy']:.3f} ± {frozen['accuracy_se']:.3f}" in readme
    lora, full = by["LoRA r=8"], by["full fine-tune"]
    verdict = compare("lora", lora["accuracy"], "full", full["accuracy"],
                      se_a=lora["accuracy_se"], se_b=full["accuracy_se"])  # fmt: skip
    assert (verdict.winner is None) == ("a tie within noise" in readme)
    # lesson 05 quotes the frozen head on every article against full fine-tuning, as a tie
    lesson = " ".join((root / "notebooks/source/05_lora.ipynb").read_text().split())
    quoted = (f"({frozen['accuracy']:.3f}) matched full fine-tuning "
              f"({full['accuracy']:.3f})")  # fmt: skip
    head_vs_full = compare("head", frozen["accuracy"], "full", full["accuracy"],
                           se_a=frozen["accuracy_se"], se_b=full["accuracy_se"])  # fmt: skip
    assert quoted in lesson and head_vs_full.winner is None
    assert f"{text['recipe']['articles']['test']} articles" in readme


@pytest.mark.slow
def test_photos_section_times_finetune_against_imagefolder(tmp_path):
    """Section 8 at smoke sizes: both pipelines train on the same generated photo folder, the
    figures are per 1,000 photos and the ratio is theirs."""
    for asset in ("photos", "efficientnet_lite0"):
        require_asset(asset)
    main(["--smoke", "--device", "cpu", "--out", str(tmp_path), "--only", "photos"])
    res = json.loads((tmp_path / "cpu-smoke.json").read_text())["sections"]["photos"]
    assert "error" not in res, res.get("error")
    ours, theirs = res["rows"]
    assert ours["pipeline"] == "coursekit finetune" and theirs["pipeline"].startswith("ImageFolder")
    assert all(r["run_s_per_1000"] > 0 and r["data_s_per_1000"] > 0 for r in res["rows"])
    assert res["ratio"] == pytest.approx(ours["run_s_per_1000"] / theirs["run_s_per_1000"], 0.01)
    assert all(r["run_cpu_s_per_1000"] > 0 for r in res["rows"])  # workers' CPU time counted
    md = (tmp_path / "cpu-smoke.md").read_text()
    assert "8. Your own photos" in md and "decodes per photo per epoch" in md


def test_sft_section_times_fit_and_trl_on_the_same_batches():
    """Lesson 08's SFT step, fit vs TRL's SFTTrainer + peft at smoke sizes: both tools train the
    same number of steps on batches of one size, and the ratios are computed from the rows."""
    import torch

    from benchmarks import sft

    require_asset("smollm2")
    pytest.importorskip("trl")
    res = sft.run(torch.device("cpu"), smoke=True)
    rows = {r["tool"]: r for r in res["rows"]}
    assert set(rows) == {"coursekit fit", "TRL SFTTrainer"}
    for r in rows.values():
        assert r["steps_timed"] == res["repeats"] * (res["steps"] - res["warmup_steps"])
        assert r["tokens_per_s"] == pytest.approx(
            res["batch"] * r["tokens_per_example"] / r["seconds_per_step"]
        )
        assert r["peak_increase_mb"] >= 0
    fit_row, trl_row = rows["coursekit fit"], rows["TRL SFTTrainer"]
    assert fit_row["tokens_per_example"] == res["tokens_per_example"]
    assert trl_row["tokens_per_example"] - fit_row["tokens_per_example"] in (0, 1)
    assert res["time_ratio"] == pytest.approx(trl_row["tokens_per_s"] / fit_row["tokens_per_s"])
    text = report._sft(res)
    assert "fit / TRL: time per token" in text and "TRL SFTTrainer" in text


def test_sft_section_without_trl_says_not_measured(monkeypatch):
    import builtins

    import torch

    from benchmarks import sft

    real_import = builtins.__import__

    def no_trl(name, *args, **kwargs):
        if name == "trl":
            raise ImportError("no trl here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_trl)
    res = sft.run(torch.device("cpu"), smoke=True)
    assert res["status"].startswith("not measured: trl is not installed")
    assert report._sft(res) == res["status"]


def test_gpu_check_grades_only_the_repeated_half_and_refuses_a_cpu():
    """The GPU check's training data is learnable (the second half of each row repeats the
    first, and only it is graded); without CUDA the check says so instead of measuring a CPU."""
    import torch

    from benchmarks import gpu_check

    batches = gpu_check.lm_batches(40)
    assert [len(y) for _, y in batches] == [16, 16, 8]
    inputs, labels = batches[0]
    half = gpu_check.TOKENS // 2
    assert torch.equal(inputs["input_ids"][:, :half], inputs["input_ids"][:, half:])
    assert (labels[:, :half] == -100).all() and torch.equal(
        labels[:, half:], inputs["input_ids"][:, half:]
    )
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="needs a CUDA GPU"):
            gpu_check.main()
