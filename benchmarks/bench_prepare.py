"""Benchmark of `prepare_dataset` against a raw floor, in the same run.

Builds a JSONL file of Banking77 rows repeated (``{"text": ..., "category": ...}``; repeats
get a ``#k`` suffix so that they are not exact duplicates), then runs, each in a fresh child
process so that peak RSS is its own:

* the floor: read every line + ``json.loads`` + ``json.dumps``;
* mixtune: ``prepare_dataset`` (convert, sanitize, validate, dedupe, split, write).

Prints records/s, peak RSS and the ratio ours/floor; ``--sizes`` runs several input sizes
to show that peak RSS stays flat. Usage::

    .venv/bin/python benchmarks/bench_prepare.py                      # 1,000,000 records
    .venv/bin/python benchmarks/bench_prepare.py --records 100000
    .venv/bin/python benchmarks/bench_prepare.py --sizes 100000,1000000,10000000 --skip-floor-above 1000000

Before/after in the same run: ``--baseline DIR`` also measures the ``mixtune`` package found
in ``DIR`` (for example an older commit's code: ``git archive <commit> lambdas | tar -x -C
/tmp/before`` and ``--baseline /tmp/before/lambdas``) on the same input, alternating with
the current code ``--repeat`` times.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "banking77" / "train.csv"


def build_jsonl(source: Path, records: int, path: Path, duplicate_share: float = 0.0) -> int:
    """Banking77 rows repeated; with ``duplicate_share`` some rows copy an earlier one exactly."""
    with open(source, newline="", encoding="utf-8") as handle:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    copy_every = round(1 / duplicate_share) if duplicate_share > 0 else 0
    written = 0
    with open(path, "wb") as out:
        batch: list[bytes] = []
        while written < records:
            source_row = written // 2 if copy_every and written % copy_every == copy_every - 1 else written
            repeat, index = divmod(source_row, len(rows))
            text, label = rows[index]
            if repeat:
                text = f"{text} #{repeat}"
            batch.append(orjson.dumps({"text": text, "category": label}))
            written += 1
            if len(batch) >= 65536:
                out.write(b"\n".join(batch) + b"\n")
                batch = []
        if batch:
            out.write(b"\n".join(batch) + b"\n")
    return path.stat().st_size


def child_floor(path: str) -> dict:
    started, cpu_started = time.perf_counter(), time.process_time()
    count = 0
    with open(path, "rb") as handle:
        for line in handle:
            json.dumps(json.loads(line))
            count += 1
    return {
        "records": count,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
    }


def child_prepare(path: str, out: str, options: dict) -> dict:
    from mixtune.dataprep import PrepareOptions, prepare_dataset

    started, cpu_started = time.perf_counter(), time.process_time()
    report = prepare_dataset(path, out, PrepareOptions(**options))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    import mixtune

    return {
        "package": str(Path(mixtune.__file__).parent),
        "records": report.counts.input,
        "kept": report.counts.kept,
        "duplicates": report.rule_counts.get("duplicate", 0),
        "accepted": report.accepted,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: per address space, so exec resets it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # may include the parent's peak


def run_child(
    kind: str, path: Path, out: Path, options: dict | None = None, package_dir: Path | None = None
) -> dict:
    """Run one measurement in a fresh interpreter (kind: floor or prepare, with options);
    ``package_dir`` puts another mixtune package first on the path."""
    env = dict(os.environ)
    if package_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_dir), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), str(out), json.dumps(options or {})],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--sizes", help="comma-separated record counts (overrides --records)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="Banking77 train.csv")
    parser.add_argument("--workdir", type=Path, help="where the input and outputs go (default: a temp dir)")
    parser.add_argument("--skip-floor-above", type=int, help="do not run the floor for sizes above N records")
    parser.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="skip exact-duplicate detection",
    )
    parser.add_argument(
        "--dedupe-memory",
        type=int,
        metavar="N",
        help="digests held in memory before dedupe spills to disk (default: the library's, 2,000,000)",
    )
    parser.add_argument(
        "--duplicate-share",
        type=float,
        default=0.0,
        metavar="F",
        help="share of rows that copy an earlier row exactly (exercises duplicate removal)",
    )
    parser.add_argument(
        "--baseline", type=Path, metavar="DIR", help="also measure the mixtune package in DIR (before/after)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each prepare measurement (best kept)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, out, options = args.child
        result = child_floor(path) if kind == "floor" else child_prepare(path, out, json.loads(options))
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return 0
    if not args.source.is_file():
        print(f"no {args.source}: the benchmark needs ../shared/data/banking77", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.records]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for size in sizes:
            path = Path(tmp, f"bench_{size}.jsonl")
            megabytes = build_jsonl(args.source, size, path, args.duplicate_share) / 1e6
            line = {"records": size, "input_mb": round(megabytes, 1)}
            if args.skip_floor_above is None or size <= args.skip_floor_above:
                floor = run_child("floor", path, Path(tmp, "unused"))
                line |= {
                    "floor_rps": round(floor["records"] / floor["seconds"]),
                    "floor_cpu_seconds": round(floor["cpu_seconds"], 2),
                    "floor_rss_mb": round(floor["peak_rss_mb"], 1),
                }
            options: dict = {"dedupe": not args.keep_duplicates}
            if args.dedupe_memory is not None:
                options["dedupe_memory_digests"] = args.dedupe_memory
            variants = {"ours": None} | ({"baseline": args.baseline} if args.baseline else {})
            best: dict[str, dict] = {}
            for _ in range(args.repeat):  # alternate, so that both see the same machine load
                for name, package in variants.items():
                    result = run_child("prepare", path, Path(tmp, f"out_{size}_{name}"), options, package)
                    if name not in best or result["cpu_seconds"] < best[name]["cpu_seconds"]:
                        best[name] = result
            ours = best["ours"]
            line |= {
                "ours_rps": round(ours["records"] / ours["seconds"]),
                "ours_seconds": round(ours["seconds"], 2),
                "ours_cpu_seconds": round(ours["cpu_seconds"], 2),
                "ours_rss_mb": round(ours["peak_rss_mb"], 1),
                "kept": ours["kept"],
                "duplicates": ours["duplicates"],
                "accepted": ours["accepted"],
            }
            if "floor_rps" in line:
                line["ratio"] = round(line["ours_rps"] / line["floor_rps"], 3)
                line["ratio_cpu"] = round(floor["cpu_seconds"] / ours["cpu_seconds"], 3)
            if "baseline" in best:
                base = best["baseline"]
                line |= {
                    "baseline_package": base["package"],
                    "baseline_rps": round(base["records"] / base["seconds"]),
                    "baseline_cpu_seconds": round(base["cpu_seconds"], 2),
                    "baseline_rss_mb": round(base["peak_rss_mb"], 1),
                    "baseline_kept": base["kept"],
                    "ours_over_baseline": round(base["seconds"] / ours["seconds"], 3),
                    "ours_over_baseline_cpu": round(base["cpu_seconds"] / ours["cpu_seconds"], 3),
                }
            print(json.dumps(line), flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
