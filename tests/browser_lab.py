"""JupyterLab in a real headless browser, driven as a learner drives it (tests/test_browser.py).

`JupyterLab` starts `jupyter lab notebooks/` (the README's command) on a free localhost port with a
token and its own config, runtime and settings folders. `LabNotebook` opens a notebook in
Chromium through Playwright, runs it from the Run menu, waits for the kernel, and reads back what
the page shows: each cell's prompt, source and rendered outputs, plus a log of every image and
widget that appeared while the cells ran (a MutationObserver), so in-place updates and transient
progress bars can be checked after the run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show
TALLEST_SCREENSHOT = 10000  # pixels per picture (Chromium cannot capture much taller ones)

# Lab settings for a test: every cell stays in the page (no windowing), so the whole notebook can
# be read and photographed; no news or update pop-ups over the notebook.
LAB_SETTINGS = {
    "notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def find_chromium() -> str | None:
    """The Chromium to drive: $COURSEKIT_CHROMIUM if set, else Debian's `chromium` or one on
    the PATH; None when there is none."""
    if "COURSEKIT_CHROMIUM" in os.environ:
        wanted = os.environ["COURSEKIT_CHROMIUM"]
        return wanted if Path(wanted).is_file() else None
    found = [c for c in CHROMIUM_PATHS if Path(c).is_file()]
    return found[0] if found else shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """`jupyter lab notebooks/` run from `workdir`, with the kernel environment `env`."""

    def __init__(self, workdir: Path, env: dict[str, str], token: str = "coursekit-test"):
        self.workdir, self.token, self.port = workdir, token, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        home = workdir / ".lab"
        for plugin, values in LAB_SETTINGS.items():
            path = home / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.env = {
            **os.environ,
            **env,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "IPYTHONDIR": str(home / "ipython"),
        }
        self.log_path = home / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> JupyterLab:
        jupyter = Path(sys.executable).parent / "jupyter"
        cmd = [str(jupyter), "lab", "notebooks/", "--no-browser", "--ip=127.0.0.1"]
        cmd += [f"--port={self.port}", "--ServerApp.port_retries=0", "--allow-root"]
        cmd += [f"--IdentityProvider.token={self.token}"]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                cmd, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited:\n{self.log_tail()}")
            try:
                self.api("status")
                return self
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer in {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.base}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def url(self, notebook: str) -> str:
        # `reset`: a fresh workspace, not the tabs (and kernels) of the notebook opened before
        return f"{self.base}/lab/tree/{notebook}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        """Stop every running kernel (each lesson's kernel holds its models in memory)."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# Installed in the page before the run: records, per cell index, every image (a short hash of
# its data) and every progress-bar widget added to an output, and any widget error text.
OBSERVER_JS = """() => {
  const notebook = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  const log = window.__coursekit = {images: {}, progress: {}, widgetErrors: []};
  const hash = window.__coursekitHash = s => {
    let h = 5381;
    for (let i = 0; i < s.length; i++) h = (h * 33 + s.charCodeAt(i)) | 0;
    return h;
  };
  const cells = () => Array.from(notebook.querySelectorAll('.jp-Cell'));
  const push = (table, el, value) => {
    const i = cells().indexOf(el.closest('.jp-Cell'));
    (table[i] = table[i] || []).push(value);
  };
  const seen = el => {
    if (el.matches('.jp-RenderedImage img')) push(log.images, el, hash(el.src));
    if (el.matches('.widget-hprogress')) push(log.progress, el, 1);
    if (/Error displaying widget/.test(el.textContent || '')) log.widgetErrors.push(el.textContent);
  };
  new MutationObserver(mutations => {
    for (const m of mutations) {
      const added = m.type === 'attributes' ? [m.target] : Array.from(m.addedNodes);
      for (const node of added) {
        if (node.nodeType !== 1) continue;
        seen(node);
        node.querySelectorAll('.jp-RenderedImage img, .widget-hprogress').forEach(seen);
      }
    }
  }).observe(notebook, {childList: true, subtree: true, attributeFilter: ['src']});
}"""

# Everything a learner can read in each cell, in order.
CELLS_JS = """() => {
  const notebook = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  return Array.from(notebook.querySelectorAll('.jp-Cell')).map(cell => ({
    type: cell.classList.contains('jp-CodeCell') ? 'code' : 'markdown',
    prompt: (cell.querySelector('.jp-InputPrompt')?.textContent || '').trim(),
    hidden: !!cell.querySelector('.jp-InputPlaceholder'),  // a collapsed (hidden) input
    source: cell.querySelector('.cm-content')?.innerText || '',
    text: cell.querySelector('.jp-Cell-inputWrapper')?.innerText || '',
    outputs: Array.from(cell.querySelectorAll('.jp-OutputArea-output')).map(o => ({
      mime: o.getAttribute('data-mime-type') || '', text: o.innerText})),
    images: Array.from(cell.querySelectorAll('.jp-RenderedImage img')).map(img => img.src.length),
    imageHashes: Array.from(cell.querySelectorAll('.jp-RenderedImage img'))
      .map(img => window.__coursekitHash(img.src)),
    links: Array.from(cell.querySelectorAll('a[href]')).map(a => a.href),
  }));
}"""


class LabNotebook:
    """One notebook open in JupyterLab, in a Playwright page."""

    def __init__(self, page: Any, lab: JupyterLab, path: str):
        self.page, self.lab, self.path = page, lab, path

    def open(self, timeout_s: float = 180) -> LabNotebook:
        self.page.goto(self.lab.url(self.path), timeout=timeout_s * 1000)
        self.page.wait_for_selector(f"{PANEL} .jp-Cell", timeout=timeout_s * 1000)
        self.wait_for_kernel(timeout_s)
        # More room for the notebook: fold the file browser away, as a learner might.
        self.page.click(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        self.page.evaluate(OBSERVER_JS)
        return self

    def kernel_status(self) -> str:
        return self.page.get_attribute(".jp-Notebook-ExecutionIndicator", "data-status") or ""

    def wait_for_kernel(self, timeout_s: float) -> None:
        """Until this notebook's kernel has started and is idle (accepting the kernel dialog,
        should JupyterLab ask which kernel to start)."""
        deadline = time.monotonic() + timeout_s
        while not self.kernel_ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path}: no idle kernel after {timeout_s:.0f} s")
            dialog = self.page.locator(".jp-Dialog button.jp-mod-accept")
            if dialog.count():
                dialog.first.click()
            time.sleep(0.5)

    def kernel_ready(self) -> bool:
        sessions = [s for s in self.lab.api("sessions") if s["path"].endswith(self.path)]
        busy = not sessions or sessions[0]["kernel"]["execution_state"] != "idle"
        return not busy and self.kernel_status() == "idle"

    def run_all(self, timeout_s: float) -> list[dict]:
        """Run > Run All Cells, then wait until no cell is queued or running and the kernel is
        idle (a run stops at the first error, as in JupyterLab). Returns the cells."""
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.click("li[data-command='runmenu:run-all']")
        return self.wait_for_run(timeout_s)

    def run_cell(self, index: int, timeout_s: float) -> list[dict]:
        """Select cell `index` (its prompt area) and run it with Shift+Enter."""
        cell = self.page.locator(f"{PANEL} .jp-Cell").nth(index)
        cell.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Shift+Enter")
        return self.wait_for_run(timeout_s, cell_index=index)

    def wait_for_run(self, timeout_s: float, cell_index: int | None = None) -> list[dict]:
        deadline, settled = time.monotonic() + timeout_s, 0
        while settled < 2:  # the same "finished" state twice in a row, a second apart
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.path}: cells still running after {timeout_s:.0f} s")
            time.sleep(1)
            cells = self.cells()
            cells = [cells[cell_index]] if cell_index is not None else cells
            prompts = [c["prompt"] for c in cells if c["type"] == "code"]
            started = any(p[1:-2].isdigit() for p in prompts)
            running = any("*" in p for p in prompts)
            done = started and not running and self.kernel_status() == "idle"
            settled = settled + 1 if done else 0
        return self.cells()

    def cells(self) -> list[dict]:
        return self.page.evaluate(CELLS_JS)

    def observed(self) -> dict:
        """What appeared while the cells ran: images and progress bars per cell index."""
        log = self.page.evaluate("() => window.__coursekit")
        return {
            "images": {int(k): v for k, v in log["images"].items()},
            "progress": {int(k): v for k, v in log["progress"].items()},
            "widgetErrors": log["widgetErrors"],
        }

    def screenshot(self, path: Path) -> list[Path]:
        """The whole notebook: the window is made as tall as the notebook (up to
        TALLEST_SCREENSHOT); a longer notebook continues in `name-2.png`, `name-3.png`..."""
        path.parent.mkdir(parents=True, exist_ok=True)
        outer = f"document.querySelector('{PANEL} .jp-WindowedPanel-outer')"
        height = self.page.evaluate(f"() => {outer}.scrollHeight")
        width = self.page.viewport_size["width"]
        self.page.set_viewport_size(
            {"width": width, "height": min(height + 160, TALLEST_SCREENSHOT)}
        )
        time.sleep(1)  # let the layout settle at the new size
        shown = self.page.evaluate(f"() => {outer}.clientHeight")
        paths = []
        for k in range(-(-height // shown)):
            self.page.evaluate(f"() => {{ {outer}.scrollTop = {k * shown}; }}")
            time.sleep(0.5)
            paths.append(path if k == 0 else path.with_name(f"{path.stem}-{k + 1}{path.suffix}"))
            self.page.screenshot(path=str(paths[-1]))
        return paths
