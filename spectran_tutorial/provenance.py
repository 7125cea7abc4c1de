"""Where a result came from: package, commit, device, library versions."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import torch


@functools.cache
def git_commit() -> str | None:
    """The commit of the source tree this package runs from ("…-dirty" when its code or set-up
    files have uncommitted changes; results files do not count), read once per process.
    A copy of the tree without its git history (a machine the tree was shipped to) gives
    ``$SPECTRAN_COMMIT`` instead, when set."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "spectran_tutorial", "benchmarks", "pyproject.toml", "constraints.txt"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("SPECTRAN_COMMIT")


@functools.cache
def code_fingerprint() -> str:
    """sha256 (16 hex digits) of the package's source files, read once per process: tells apart
    the code of two rows even when their commit is "-dirty" or unknown."""
    import hashlib
    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"


def provenance(device: torch.device) -> dict:
    from . import __version__
    return {"package_version": __version__, "git_commit": git_commit(), "code": code_fingerprint(),
            "device": device_name(device),
            # the CPU's vector instructions decide torch's kernels, hence the last bits of a result:
            # a stored run reproduces bit for bit only where these match (and the text matrix does)
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_version": torch.__version__, "python": platform.python_version(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
