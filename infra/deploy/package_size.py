"""`make size`: unzipped size of each function plus the core layer, as Lambda (arm64, 3.12) gets them.

Builds the layer with the recipe `sam build` uses (shared/Makefile, target build-CoreLayer: the
locked requirements with hashes as manylinux_2_28 aarch64 / CPython 3.12 wheels, gateway_core, and
hash-based pyc) into a temporary folder, and compares each function + layer with Lambda's 250 MB
unzipped limit. The pyc are compiled by python3.12 when it is on the PATH; otherwise by this Python,
as a size estimate (the report says so: a real build needs 3.12's pyc).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT_MB = 250.0
LAYER_ID = "CoreLayer"


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1_000_000


def lambda_python() -> str | None:
    """A working Python 3.12 with pip (on the PATH, or one of pyenv's), as the build needs for its pyc."""
    candidates = [shutil.which("python3.12")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        candidates += sorted(str(p) for p in Path(root or "/nonexistent").glob("versions/3.12*/bin/python3.12"))
    probe = "import sys, pip; sys.exit(sys.version_info[:2] != (3, 12))"
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", probe], capture_output=True, check=False).returncode == 0:
            return candidate
    return None


def build_layer(artifacts: Path) -> str | None:
    """Run the layer's build recipe into artifacts/python; a note when the pyc are not 3.12's."""
    python = lambda_python()
    note = None
    command = ["make", "--no-print-directory", "-C", str(ROOT / "shared"), f"build-{LAYER_ID}"]
    command.append(f"ARTIFACTS_DIR={artifacts}")
    if python:
        command.append(f"PYTHON={python}")
    else:
        command += [f"PYTHON={sys.executable}", "ANY_PYTHON=1"]
        note = f"pyc compiled by Python {sys.version_info.major}.{sys.version_info.minor} as a size estimate (no python3.12 here)"
    subprocess.run(command, check=True)
    return note


def largest(target: Path, count: int = 6) -> list[tuple[str, float]]:
    sizes = [(p.name, folder_mb(p)) for p in target.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")]
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:count]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        print("Building the layer (shared/Makefile build-CoreLayer) for Lambda arm64 / Python 3.12 ...", flush=True)
        note = build_layer(Path(tmp))
        layer = Path(tmp) / "python"
        layer_mb = folder_mb(layer)
        pyc = sum(1 for _ in layer.rglob("*.pyc"))
        rows = []
        for function in sorted(p for p in (ROOT / "functions").iterdir() if p.is_dir()):
            code_mb = folder_mb(function)
            rows.append((function.name, code_mb, layer_mb, code_mb + layer_mb))
        print(f"\n{'function':<10} {'code MB':>8} {'layer MB':>9} {'total MB':>9} {'of 250 MB':>10}")
        for name, code_mb, l_mb, total in rows:
            print(f"{name:<10} {code_mb:>8.3f} {l_mb:>9.1f} {total:>9.1f} {total / LIMIT_MB:>9.0%}")
        print("\nLargest packages in the layer: " + ", ".join(f"{n} {mb:.1f} MB" for n, mb in largest(layer)))
        print(f"Precompiled: {pyc} hash-based .pyc files" + (f" ({note})" if note else ""))
        return 0 if all(total < LIMIT_MB for *_, total in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
