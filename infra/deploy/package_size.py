"""`make size`: unzipped size of each function plus the core layer, as Lambda (arm64, 3.12) gets them.

Installs the layer's pinned requirements for manylinux aarch64 / CPython 3.12
into a temporary folder (what `sam build` does), adds the core package, and
compares each function + layer with Lambda's 250 MB unzipped limit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT_MB = 250.0


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1_000_000


def build_layer(target: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--platform",
            "manylinux2014_aarch64",
            "--implementation",
            "cp",
            "--python-version",
            "3.12",
            "--only-binary=:all:",
            "--target",
            str(target),
            "-r",
            str(ROOT / "shared" / "requirements.txt"),
        ],
        check=True,
    )
    shutil.copytree(
        ROOT / "shared" / "gateway_core", target / "gateway_core", ignore=shutil.ignore_patterns("__pycache__")
    )


def largest(target: Path, count: int = 6) -> list[tuple[str, float]]:
    sizes = [(p.name, folder_mb(p)) for p in target.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")]
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:count]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        layer = Path(tmp) / "python"
        print("Installing the layer's requirements for Lambda arm64 / Python 3.12 ...", flush=True)
        build_layer(layer)
        layer_mb = folder_mb(layer)
        rows = []
        for function in sorted(p for p in (ROOT / "functions").iterdir() if p.is_dir()):
            code_mb = folder_mb(function)
            rows.append((function.name, code_mb, layer_mb, code_mb + layer_mb))
        print(f"\n{'function':<10} {'code MB':>8} {'layer MB':>9} {'total MB':>9} {'of 250 MB':>10}")
        for name, code_mb, l_mb, total in rows:
            print(f"{name:<10} {code_mb:>8.3f} {l_mb:>9.1f} {total:>9.1f} {total / LIMIT_MB:>9.0%}")
        print("\nLargest packages in the layer: " + ", ".join(f"{n} {mb:.1f} MB" for n, mb in largest(layer)))
        return 0 if all(total < LIMIT_MB for *_, total in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
