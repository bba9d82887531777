#!/usr/bin/env python3
"""Set up Wegweiser on a machine with only Python, then run it or its tests.

    python3 go.py up        # install into .venv if needed, then run everything locally
    python3 go.py test      # install (with test tools) if needed, then lint and run every test
    python3 go.py check     # the quick loop: lint, types, unit, contract and HTTP tests
    python3 go.py bench     # the end-to-end benchmark (bench/pipeline.py)
    python3 go.py lock      # resolve the dependencies anew into requirements/*.txt
    python3 go.py ARGS...   # any other `wegweiser` command, e.g. `python3 go.py demo`

Uses only the standard library; everything else comes from PyPI into ./.venv, at exactly
the versions and hashes of the lock files in requirements/ (runtime.txt, test.txt).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


LOCKS = ROOT / "requirements"


def ensure_installed(kind: str = "runtime") -> None:
    """Create .venv and install exactly the lock file's versions; again only if the lock changed.

    `runtime` is what `up` needs; `test` is a superset with the test tools. The stamp holds
    the hash of the lock that was installed, so an old .venv follows every change of the lock.
    """
    if sys.version_info < (3, 11):  # noqa: UP036 - go.py itself must run on older Pythons
        sys.exit(f"Wegweiser needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print("creating .venv …", flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:  # noqa: BLE001 - explain the one common cause, then stop
            sys.exit(
                f"could not create a virtual environment ({exc}); on Debian/Ubuntu "
                "install the python3-venv package first"
            )
    stamp = VENV / ".installed"
    installed = stamp.read_text().splitlines() if stamp.exists() else []
    wanted = [_digest("runtime"), _digest("test")] if kind == "runtime" else [_digest("test")]
    if any(line in wanted for line in installed):
        return
    print(f"installing Wegweiser and its locked {kind} dependencies into .venv …", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    lock = LOCKS / f"{kind}.txt"
    subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True)
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True)
    stamp.write_text(_digest(kind) + "\n")


def _digest(kind: str) -> str:
    """What an install of `kind` depends on: its lock file and the project's own metadata."""
    h = hashlib.sha256(kind.encode())
    for path in (LOCKS / f"{kind}.txt", ROOT / "pyproject.toml"):
        h.update(path.read_bytes())
    return h.hexdigest()


def lock() -> int:
    """Resolve pyproject.toml anew into requirements/*.txt (hashes, all platforms, 3.11+)."""
    ensure_installed("test")
    common = [
        str(BIN / "uv"), "pip", "compile", "--quiet", "--universal", "--python-version", "3.11",
        "--generate-hashes", "--custom-compile-command", "python3 go.py lock", "--upgrade",
    ]  # fmt: skip
    sources = ["pyproject.toml", "requirements/build.in"]
    steps = [
        [*common, *sources, "-o", "requirements/runtime.txt"],
        # the test lock is constrained by the runtime lock: `up` and the tests run the same versions
        [*common, "--extra", "test", "-c", "requirements/runtime.txt", *sources,
         "-o", "requirements/test.txt"],
    ]  # fmt: skip
    for step in steps:
        if code := run(*step):
            return code
    return 0


def run(*args: str) -> int:
    return subprocess.run(list(args), cwd=ROOT).returncode


CHROMIUM = Path("/usr/bin/chromium")


ETHIOPIC = Path("/usr/share/fonts/truetype/abyssinica")
"""A font for Tigrinya (Ge'ez script): Chromium's default fonts on Debian have none, and the
screenshots of the person's page in Tigrinya would show empty boxes."""


def ensure_browser() -> None:
    """The web app's browser tests drive Debian's Chromium; install it when it is missing."""
    if CHROMIUM.exists() and ETHIOPIC.exists():
        return
    packages = ["chromium", "fonts-sil-abyssinica"]
    apt = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if os.geteuid() != 0:
        apt = ["sudo", "-n", *apt]
    print("installing Debian's chromium for the browser tests …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(apt, env=env).returncode != 0:
        subprocess.run([*apt[: apt.index("install")], "update", "-q"], env=env)
        subprocess.run(apt, env=env)
    if not CHROMIUM.exists():
        sys.exit(
            "the browser tests need Chromium at /usr/bin/chromium: "
            "`apt-get install chromium` (as root) and run the tests again"
        )


A11Y = ROOT / "tests" / "a11y"
AXE = A11Y / "node_modules" / "axe-core" / "axe.min.js"


def ensure_axe() -> None:
    """The browser tests audit pages with axe-core (npm): install it from its lock file, once
    per change of the lock (npm ci checks each package's integrity hash)."""
    lock, stamp = A11Y / "package-lock.json", A11Y / "node_modules" / ".wegweiser-lock"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if AXE.exists() and stamp.exists() and stamp.read_text() == digest:
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("the accessibility audits need npm (Node.js): install nodejs and npm, then retry")
    print("installing axe-core for the accessibility audits (npm ci) …", flush=True)
    ci = [npm, "ci", "--prefix", str(A11Y), "--no-audit", "--no-fund", "--loglevel=error"]
    if subprocess.run(ci).returncode != 0 or not AXE.exists():
        sys.exit(f"`{' '.join(ci)}` failed: the accessibility audits need axe-core")
    stamp.write_text(digest)


LINT = [
    [str(BIN / "ruff"), "check", "."],
    [str(BIN / "ruff"), "format", "--check", "."],
    [str(BIN / "mypy"), "schemas", "services", "wegweiser", "infra", "tests"],
]
QUICK = ["tests/unit", "tests/contract", "tests/http"]
CORES = os.cpu_count() or 1
PARALLEL = ["-n", str(2 * CORES), "--dist", "loadscope"]
"""pytest-xdist: two workers per core, since the end-to-end tests mostly wait on their
processes; the tests of one module stay in one worker, so its shared system starts once.
A later `-n 0` on the command line runs everything in one process."""
PARALLEL_QUICK = ["-n", str(CORES + 1), "--dist", "loadscope"]
"""The quick tests start no processes and keep the cores busy: one worker per core and one
for the moments a worker waits on PostgreSQL. Each worker collects every test (8 s of CPU),
so two per core made `check` slower: 110 s against 92 s on 2 cores."""


def test(extra: list[str]) -> int:
    """Everything CI runs: lint, types, the contracts' drift check and every test."""
    ensure_browser()
    ensure_axe()
    return steps(
        *LINT,
        [str(BIN / "wegweiser"), "schemas", "check"],
        [str(PYTHON), "-m", "pytest", *PARALLEL, *extra],
    )


def check(extra: list[str]) -> int:
    """The loop to run before every commit: no processes, no broker, no browser."""
    return steps(*LINT, [str(PYTHON), "-m", "pytest", "-q", *PARALLEL_QUICK, *(extra or QUICK)])


def steps(*commands: list[str]) -> int:
    for step in commands:
        print(
            "+",
            " ".join(Path(step[0]).name if i == 0 else a for i, a in enumerate(step)),
            flush=True,
        )
        code = run(*step)
        if code != 0:
            return code
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    # compiled modules are cached (in the git-ignored __pycache__ folders) even where the
    # environment asks Python not to: without the cache every process of `up` and every test
    # worker compiles Wegweiser's own modules anew, which cost `check` about 10 s of its 2 min
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if command == "lock":
        return lock()
    ensure_installed("test" if command in {"test", "check"} else "runtime")
    if command == "test":
        return test(rest)
    if command == "check":
        return check(rest)
    os.chdir(ROOT)
    # exec, so that Ctrl-C and SIGTERM reach `wegweiser up` itself and it shuts down cleanly
    if command == "bench":
        os.execv(PYTHON, [str(PYTHON), "bench/pipeline.py", *rest])
    os.execv(BIN / "wegweiser", [str(BIN / "wegweiser"), *argv])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
