"""What a run was made with: its config, seed, command, package versions, git commit and device,
appended to run_info.json in the run folder at every invocation (a resumed run has several)."""
from __future__ import annotations

import datetime
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("colliderfm", "torch", "numpy", "awkward", "uproot", "h5py", "vector-quantize-pytorch", "transformers",
            "safetensors", "scikit-learn", "pythia8mc", "fastjet")
REPO = Path(__file__).resolve().parent.parent


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(repo: Path = REPO) -> dict | None:
    """{"commit", "dirty"} of the source checkout, or None where the code is not a git checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": head.stdout.strip(), "dirty": dirty}


def run_info(config: dict, seed: int | None, device: str | None = None) -> dict:
    return {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": [Path(sys.argv[0]).name, *sys.argv[1:]], "config": config, "seed": seed, "device": device,
            "python": platform.python_version(), "platform": platform.platform(), "host": platform.node(),
            "packages": package_versions(), "git": git_state()}


def record_run(folder: str | Path, config: dict, seed: int | None, device: str | None = None) -> None:
    """Append this invocation's run info to `folder`/run_info.json (written atomically)."""
    from common.atomic import atomic_path

    path = Path(folder) / "run_info.json"
    runs = json.loads(path.read_text())["runs"] if path.is_file() else []
    runs.append(run_info(config, seed, device))
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"runs": runs}, indent=1))
