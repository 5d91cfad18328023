"""Constants and helpers the engine tests share.

A module of its own rather than conftest: every suite has a conftest.py, and importing from
"conftest" picks whichever was loaded last when several suites are collected together.
"""

from __future__ import annotations

import random
from pathlib import Path

SCANNERS = ("regex", "hyperscan")
REF_KEY = b"k" * 32
# The labelled sample corpus lives in shared/, beside the checkout (CI lays a copy there too).
_BESIDE = Path(__file__).resolve().parents[3] / "shared" / "eval" / "dev-20k.jsonl"
CORPUS = _BESIDE if _BESIDE.exists() else Path("/work/shared/eval/dev-20k.jsonl")


def luhn_complete(partial: str) -> str:
    """``partial`` + the Luhn check digit that makes the whole number valid."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)


def digits_only(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return "".join(c for c in text if "0" <= c <= "9")


def make_card(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return luhn_complete(body)
