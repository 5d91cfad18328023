"""What a wheel built from the project carries: the engine needs its rule packs and word list
at run time, and an installed redactor has no source tree to read them from."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_wheel_carries_every_shipped_pack(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
        + ["--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("redactor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packs = sorted(p.name for p in (ROOT / "rules").glob("*.toml"))
    assert packs, "no packs in rules/"
    missing = [p for p in packs if f"redactor/_packs/{p}" not in names]
    assert not missing, f"packs missing from the wheel: {missing}"
    assert "redactor/engine/bip39_english.txt" in names
