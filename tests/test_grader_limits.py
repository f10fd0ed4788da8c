"""The grader's limits hold for a sandbox and everything it starts (teach.sandbox, teach.cgroup).

Each test starts a small program in the same sandbox a submission's kernel gets (bubblewrap,
sized tmpfs, a cgroup) and has it push against one limit: memory shared by several children,
the number of processes, each writable place, the host's /sys and /proc, the CPU quota, the
largest message a kernel may send, and the size of a submission file. Where cgroups are not
available the cgroup tests check the grader's explanation instead, and say they were skipped.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from coursekit.teach.cgroup import FALLBACK, probe
from coursekit.teach.collect import Caps, collect
from coursekit.teach.sandbox import RUN, SOCKETS, Sizes, find_bwrap, launcher

if shutil.which("bwrap") is None:
    message = "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    if os.environ.get("COURSEKIT_REQUIRE_ASSETS") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

MB = 2**20
NO_CGROUPS = probe()


def sandboxed(tmp_path: Path, code: str, sizes: Sizes, timeout: float = 120) -> tuple:
    """Run `code` in a sandbox with `sizes`; (completed process, peak memory, cgroup events)."""
    command = [sys.executable, "-c", textwrap.dedent(code)]
    argv, group, _ = launcher(find_bwrap(), [tmp_path], sizes, command, tmp_path)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        peak = group.peak_memory() if group else None
        events = group.events() if group else {}
    finally:
        if group is not None:
            group.remove()
    return done, peak, events


def needs_cgroups() -> None:
    if NO_CGROUPS:
        text = FALLBACK.format(reason=NO_CGROUPS)
        assert "cgroup" in text and "children escape" in text and "--cgroupns=host" in text
        pytest.skip(f"cgroups unavailable here ({NO_CGROUPS}); the grader says: {text[:80]}...")


def test_memory_is_shared_by_a_sandbox_and_all_its_children(tmp_path):
    needs_cgroups()
    code = """
    import os, time
    kids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            block = bytearray(150 * 2**20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            time.sleep(3)
            os._exit(0)
        kids.append(pid)
    print([os.waitpid(k, 0)[1] for k in kids])
    """
    done, peak, events = sandboxed(tmp_path, code, Sizes(memory=256 * MB))
    statuses = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(os.WIFSIGNALED(s) and os.WTERMSIG(s) == 9 for s in statuses), statuses
    assert peak <= 256 * MB, "3 x 150 MB never all fit: the limit holds for the children together"
    assert events.get("oom_kill", 0) >= 1


FORKS = """import os, time
started = 0
for _ in range(500):
    try:
        if os.fork() == 0:
            time.sleep(2)
            os._exit(0)
        started += 1
    except OSError:
        break
print("children started:", started)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""  # also the red team's fork bomb (tests/test_grader_redteam.py)


def test_processes_are_capped_for_the_whole_sandbox(tmp_path):
    needs_cgroups()
    done, _, events = sandboxed(tmp_path, FORKS, Sizes(processes=40))
    started = int(done.stdout.split()[-1])
    assert 0 < started < 40, "children past the cap fail to start"
    assert events.get("pids_max", 0) >= 1


def test_the_cpu_quota_holds(tmp_path):
    needs_cgroups()
    code = """
    import os, time
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        pass
    print(os.times().user + os.times().system)
    """
    done, _, _ = sandboxed(tmp_path, code, Sizes(cpus=0.2))
    assert float(done.stdout.split()[-1]) < 0.2 * 2.0 * 1.5 + 0.1, "at most 0.2 cores for 2 s"


def test_torch_imports_and_trains_within_two_gigabytes(tmp_path):
    """`--memory-gb 2` used to make `import torch` fail (address-space limit); not any more."""
    code = """
    import torch
    model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 10))
    opt = torch.optim.AdamW(model.parameters())
    for _ in range(20):
        loss = model(torch.randn(64, 256)).logsumexp(1).mean()
        opt.zero_grad(); loss.backward(); opt.step()
    print("trained", round(loss.item(), 3))
    """
    done, peak, _ = sandboxed(tmp_path, code, Sizes(memory=2 * 2**30, processes=512))
    assert "trained" in done.stdout, done.stderr[-500:]
    assert peak is None or peak < 2 * 2**30


def test_every_writable_place_is_a_sized_tmpfs_and_the_rest_is_read_only(tmp_path):
    code = f"""
    import json, os
    written = {{}}
    for folder in ("/tmp/work", "/dev/shm", "{SOCKETS}", "{RUN}"):
        n = 0
        try:
            with open(os.path.join(folder, "fill"), "wb") as f:
                for _ in range(64):
                    f.write(b"x" * 2**20)
                    f.flush()
                    n += 1
        except OSError:
            pass
        written[folder] = n
    refused = []
    for folder in ("/", "/dev", "/usr", "/etc", "/run", "{tmp_path}"):
        try:
            open(os.path.join(folder, "x"), "w").close()
        except OSError:
            refused.append(folder)
    print(json.dumps([written, refused]))
    """
    sizes = Sizes(work=8 * MB, shm=4 * MB, out=6 * MB, sockets=MB, max_file=32 * MB)
    done, _, _ = sandboxed(tmp_path, code, sizes)
    written, refused = json.loads(done.stdout.strip().splitlines()[-1])
    for folder, size in (("/tmp/work", 8), ("/dev/shm", 4), (SOCKETS, 1), (RUN, 6)):
        assert size - 2 <= written[folder] <= size, (folder, "MB written in a tmpfs of", size)
    assert refused == ["/", "/dev", "/usr", "/etc", "/run", str(tmp_path)]


def test_the_hosts_sys_proc_and_environment_are_hidden(tmp_path):
    os.environ["GRADER_SECRET"] = "must not leak"
    code = """
    import json, os
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    print(json.dumps([os.path.exists("/sys/fs/cgroup"), os.path.exists("/sys/kernel"), len(pids),
                      "GRADER_SECRET" in open("/proc/self/environ").read()]))
    """
    try:
        done, _, _ = sandboxed(tmp_path, code, Sizes())
    finally:
        del os.environ["GRADER_SECRET"]
    cgroupfs, kernel, n_pids, leaked = json.loads(done.stdout.strip().splitlines()[-1])
    assert not cgroupfs and not kernel, "no /sys of the host"
    assert n_pids <= 3, "its own /proc: bwrap's init and itself"
    assert not leaked


def test_a_kernel_message_above_the_limit_is_dropped_and_the_kernel_goes_on(tmp_path):
    from coursekit.teach.kernel import Kernel, starter

    big = (
        "from IPython.display import display\ndisplay({'text/plain': 'x' * 100_000_000}, raw=True)"
    )
    kernel = Kernel(starter(tmp_path, [tmp_path], Sizes(out=MB), 8 * MB), 2 * MB, 8 * MB)
    kernel.start()
    try:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        first = kernel.execute(big, 60)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kernel.kill()
        kernel.start()  # what the grader does with a cell that ends 'hung'
        second = kernel.execute("print('still here')", 60)
    finally:
        kernel.kill()
    assert first.status == "hung" and "larger than the grader accepts" in first.message
    assert "x" * 1000 not in json.dumps(first.outputs), "the 100 MB message never arrived"
    assert (after - before) * 1024 < 50 * MB, "and never sat in the grader's memory"
    assert second.status == "ok" and "still here" in second.outputs[0]["text"]


def _notebook(path: Path, cells: int) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("") for _ in range(cells)]
    path.write_text(json.dumps(nb))
    return path


def test_submission_files_are_capped_before_any_kernel_starts(tmp_path):
    huge = tmp_path / "huge" / "97_redteam.ipynb"
    huge.parent.mkdir()
    cell = '{"cell_type":"markdown","metadata":{},"source":""}'
    huge.write_text('{"nbformat":4,"nbformat_minor":5,"metadata":{},"cells":['
                    + ",".join([cell] * 700_000) + "]}")  # fmt: skip
    assert huge.stat().st_size > 30 * MB, "a valid notebook of 700,000 empty cells"
    (sub,) = collect([huge])
    assert sub.nb is None and "700,000 cells, more than the 5,000 allowed" in sub.error
    small = _notebook(tmp_path / "small.ipynb", 3)
    (sub,) = collect([small], Caps(bytes=100))
    assert sub.nb is None and "larger than" in sub.error
    (sub,) = collect([small], Caps(parse_seconds=0.0001))
    assert sub.nb is None and "to read" in sub.error
    (sub,) = collect([small])
    assert sub.nb is not None and len(sub.nb.cells) == 3


def test_a_kernel_reuses_the_graders_feature_cache_but_cannot_change_it(tmp_path, monkeypatch):
    """The grader's cached features are linked read-only into each kernel's own cache folder:
    reading one works, writing through the link fails, and a new entry stays in the kernel's
    tmpfs (the grader's folder is unchanged)."""
    from coursekit.teach.kernel import Kernel, starter

    data = tmp_path / "data"
    (data / "features").mkdir(parents=True)
    entry = data / "features" / "features-abc.safetensors"
    entry.write_bytes(b"cached")
    monkeypatch.setenv("COURSEKIT_DATA", str(data))
    work = tmp_path / "grading"
    work.mkdir()
    code = textwrap.dedent("""\
        import os
        cache = os.path.join(os.environ["COURSEKIT_DATA"], "features")
        entry = os.path.join(cache, "features-abc.safetensors")
        print(open(entry, "rb").read())
        try:
            with open(entry, "wb") as f:
                f.write(b"poisoned")
            print("written")
        except OSError as err:
            print("refused", err.errno)
        with open(os.path.join(cache, "features-new.safetensors"), "wb") as f:
            f.write(b"new")
        print(sorted(os.listdir(cache)))
        """)
    kernel = Kernel(starter(work, [work], Sizes(out=MB), 8 * MB), 2 * MB, 8 * MB)
    kernel.start()
    try:
        run = kernel.execute(code, 60)
    finally:
        kernel.kill()
    text = "".join(o.get("text", "") for o in run.outputs)
    assert run.status == "ok", run.message
    assert "b'cached'" in text and "refused" in text and "written" not in text, text
    assert "features-new.safetensors" in text
    assert entry.read_bytes() == b"cached"
    assert sorted(p.name for p in (data / "features").iterdir()) == ["features-abc.safetensors"]
