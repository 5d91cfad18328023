"""Engine and ``redactor scrub`` benchmark: every figure is a ratio to a baseline measured in
the same run, or a throughput, as the median of several runs.

    .venv/bin/python benchmarks/bench_engine.py [--quick]

Prints:
  * engine cost per 170-byte log line (clean and dirty) / one stdlib logging call
    (Formatter + StreamHandler to /dev/null)                          target clean <= 0.10
  * scrub throughput on the dev corpus (MB/s)                         target >= 15 MB/s
  * scrub on a mostly clean log (1% dirty lines) / a bare Python loop copying the same lines
    from stdin to stdout, whole processes run in turn (the median of the pairs' ratios), and
    with both start-ups taken out                                     target <= 2.0;
    and the same on a log four times as long (fixed costs weigh less)
  * scrub on the corpus's negative lines (look-alikes built to resemble secrets, 1% dirty)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "eval" / "dev-20k.jsonl"
sys.path.insert(0, str(ROOT))

from redactor import create_redactor  # noqa: E402
from redactor.settings import resolve_settings  # noqa: E402

CLEAN_LINE = (
    "2024-05-07 06:00:00,138 INFO [app.payments] request completed method=GET "
    "path=/api/v2/orders/8812 status=200 duration_ms=41 user=alice region=eu-west-1 trace=ok"
)
DIRTY_LINE = (
    "2024-05-07 06:00:00,138 INFO [app.payments] charge ok card=4111111111111111 "
    "path=/api/v2/orders/8812 status=200 duration_ms=41 user=alice region=eu-west-1"
)
BARE_COPY = "import sys\nw = sys.stdout.buffer.write\nfor line in sys.stdin.buffer:\n    w(line)\n"


def median_time(fn, number: int, repeat: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number


def logging_call_cost(number: int, repeat: int) -> float:
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("bench.baseline")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return median_time(lambda: logger.info("%s", CLEAN_LINE), number, repeat)


def engine_costs(number: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        redactor = create_redactor(resolve_settings(home=home, ref_key=b"b" * 32))
        assert redactor.redact(CLEAN_LINE) is CLEAN_LINE
        assert "4111111111111111" not in redactor.redact(DIRTY_LINE)
        log_call = logging_call_cost(number, repeat)
        clean = median_time(lambda: redactor.redact(CLEAN_LINE), number, repeat)
        dirty = median_time(
            lambda: redactor.redact(DIRTY_LINE, trace_id="0af7651916cd43dd8448eb211c80319c"),
            number // 4,
            repeat,
        )
    return {
        "log_call_us": log_call * 1e6,
        "clean_us": clean * 1e6,
        "dirty_us": dirty * 1e6,
        "clean_ratio": clean / log_call,
        "dirty_ratio": dirty / log_call,
    }


def corpus_lines() -> tuple[list[str], list[str]]:
    dirty, clean = [], []
    with CORPUS.open(encoding="utf-8") as fh:
        for raw in fh:
            record = json.loads(raw)
            (dirty if record["secrets"] else clean).append(record["line"])
    return dirty, clean


def write_file(path: Path, lines: list[str], target_bytes: int) -> int:
    data = ("\n".join(lines) + "\n").encode()
    with path.open("wb") as fh:
        written = 0
        while written < target_bytes:
            fh.write(data)
            written += len(data)
    return written


def run_once(cmd: list[str], stdin_path: Path) -> float:
    with stdin_path.open("rb") as stdin:
        start = time.perf_counter()
        subprocess.run(
            cmd,
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            check=True,
            env={**os.environ, "REDACTOR_HOME": str(stdin_path.parent / "home")},
        )
        return time.perf_counter() - start


def time_command(cmd: list[str], stdin_path: Path, repeat: int) -> float:
    return statistics.median(run_once(cmd, stdin_path) for _ in range(repeat))


def time_pair(
    cmd: list[str], baseline: list[str], stdin_path: Path, repeat: int
) -> tuple[float, float, float]:
    """Medians of ``cmd`` and ``baseline`` run in turn, and the median of their per-pair
    ratios: on a shared machine whose speed drifts, a pair sees the same speed."""
    pairs = [(run_once(cmd, stdin_path), run_once(baseline, stdin_path)) for _ in range(repeat)]
    return (
        statistics.median(a for a, _ in pairs),
        statistics.median(b for _, b in pairs),
        statistics.median(a / b for a, b in pairs),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs and smaller inputs")
    args = parser.parse_args()
    repeat = 3 if args.quick else 5
    number = 5_000 if args.quick else 20_000
    size = (8 if args.quick else 32) << 20
    # Start-up as installed (pip byte-compiles); hash-checked .pyc never go stale after edits.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "checked-hash"]
        + [str(ROOT / "redactor")],
        check=True,
    )

    costs = engine_costs(number, repeat)
    print(f"one stdlib logging call              {costs['log_call_us']:8.2f} us")
    print(
        f"engine, clean 170-byte line          {costs['clean_us']:8.2f} us   "
        f"ratio {costs['clean_ratio']:.3f}   (target <= 0.10)"
    )
    print(
        f"engine, dirty 170-byte line (1 card) {costs['dirty_us']:8.2f} us   "
        f"ratio {costs['dirty_ratio']:.3f}"
    )

    scrub = [str(ROOT / ".venv" / "bin" / "redactor"), "scrub", "--no-vault"]
    if not Path(scrub[0]).exists():
        scrub = [sys.executable, "-m", "redactor", "scrub", "--no-vault"]
    dirty, clean = corpus_lines()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        dev = tmp_path / "dev.log"
        dev_bytes = write_file(dev, _interleave(dirty, clean), size)
        mostly_clean = tmp_path / "mostly-clean.log"
        mc_bytes = write_file(mostly_clean, app_log(dirty, 20_000), size)
        # The same log four times as long: how much of the ratio is start-up and compiling.
        mostly_clean_4x = tmp_path / "mostly-clean-4x.log"
        mc4_bytes = write_file(mostly_clean_4x, app_log(dirty, 20_000), 4 * size)
        lookalikes = tmp_path / "lookalikes.log"
        la_bytes = write_file(lookalikes, with_dirty(clean, dirty, 20_000), size)

        copy = [sys.executable, "-c", BARE_COPY]
        startup, copy_startup, _ = time_pair(scrub, copy, _one_line(tmp_path), repeat)
        t_dev = time_command(scrub, dev, repeat)
        # Ratios to the copy loop come from runs in turn: 2x more runs, as they are short.
        t_mc, t_copy, r_mc = time_pair(scrub, copy, mostly_clean, 2 * repeat)
        t_mc4, t_copy4, r_mc4 = time_pair(scrub, copy, mostly_clean_4x, repeat)
        t_la, t_la_copy, r_la = time_pair(scrub, copy, lookalikes, repeat)
    mb = 1e6
    print(f"scrub start-up (1 line)              {startup:8.3f} s")
    print(
        f"scrub, dev corpus ({dev_bytes / mb:.0f} MB, 55% dirty)   "
        f"{dev_bytes / t_dev / mb:8.1f} MB/s incl. start-up, "
        f"{dev_bytes / max(t_dev - startup, 1e-9) / mb:.1f} MB/s excl.   (target >= 15)"
    )
    print(
        f"scrub, mostly clean ({mc_bytes / mb:.0f} MB, 1% dirty)  "
        f"{mc_bytes / t_mc / mb:8.1f} MB/s; bare copy loop "
        f"{mc_bytes / t_copy / mb:.1f} MB/s; ratio {r_mc:.2f}   (target <= 2.0)"
    )
    print(
        "  same, start-up of both taken out: "
        f"ratio {(t_mc - startup) / max(t_copy - copy_startup, 1e-9):.2f}"
    )
    print(
        f"  same log, {mc4_bytes / mb:.0f} MB: {mc4_bytes / t_mc4 / mb:.1f} MB/s; bare copy loop "
        f"{mc4_bytes / t_copy4 / mb:.1f} MB/s; ratio {r_mc4:.2f}"
    )
    print(
        f"scrub, corpus look-alikes ({la_bytes / mb:.0f} MB, 1% dirty) "
        f"{la_bytes / t_la / mb:8.1f} MB/s; bare copy loop "
        f"{la_bytes / t_la_copy / mb:.1f} MB/s; ratio {r_la:.2f}   "
        "(negative lines built to resemble secrets)"
    )
    return 0


def app_log(dirty: list[str], n: int) -> list[str]:
    """Typical service logs (access, JSON, logfmt, framework lines with ids, durations,
    timestamps and trace ids) with 1% of lines taken from the corpus's dirty lines."""
    rng = random.Random(7)
    paths = [
        "/api/v2/orders",
        "/api/v1/users",
        "/healthz",
        "/api/v2/payments",
        "/static/app.js",
        "/login",
    ]
    lines = []
    for i in range(n):
        trace, span = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64):016x}"
        ts = f"2024-05-07T06:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{i % 1000:03d}Z"
        path, ms, status = (
            rng.choice(paths),
            rng.randint(1, 900),
            rng.choice([200, 200, 200, 201, 204, 304, 404, 500]),
        )
        kind = i % 4
        if kind == 0:
            lines.append(
                f'10.0.{i % 250}.{i % 200} - - [07/May/2024:06:00:{i % 60:02d} +0000] "GET {path}/{i} HTTP/1.1" {status} {ms * 10} "-" "Mozilla/5.0 (X11; Linux x86_64)" rt={ms / 1000:.3f}'  # noqa: E501
            )
        elif kind == 1:
            lines.append(
                f'{{"ts":"{ts}","level":"info","logger":"app.http","msg":"request completed","method":"GET","path":"{path}/{i}","status":{status},"duration_ms":{ms},"trace_id":"{trace}","span_id":"{span}"}}'  # noqa: E501
            )
        elif kind == 2:
            lines.append(
                f'time={ts} level=info msg="job finished" job=reindex-{i % 17} items={ms * 3} duration={ms}ms worker=worker-{i % 8} trace_id={trace}'  # noqa: E501
            )
        else:
            lines.append(
                f"{ts} INFO [celery.worker] Task app.tasks.sync_inventory[{trace[:8]}-{trace[8:12]}-{trace[12:16]}-{trace[16:20]}-{trace[20:]}] succeeded in {ms / 1000:.4f}s: None"  # noqa: E501
            )
    for i in rng.sample(range(n), n // 100):
        lines[i] = rng.choice(dirty)
    return lines


def with_dirty(clean: list[str], dirty: list[str], n: int) -> list[str]:
    rng = random.Random(7)
    lines = [rng.choice(clean) for _ in range(n)]
    for i in rng.sample(range(n), n // 100):
        lines[i] = rng.choice(dirty)
    return lines


def _interleave(dirty: list[str], clean: list[str]) -> list[str]:
    rng = random.Random(3)
    lines = dirty + clean
    rng.shuffle(lines)
    return lines


def _one_line(tmp: Path) -> Path:
    path = tmp / "one.log"
    path.write_text(CLEAN_LINE + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
