"""Benchmark the mixer: N domain + N general records, against one plain read-and-write pass.

    .venv/bin/python benchmarks/bench_mix.py               # 1,000,000 + 1,000,000 records
    .venv/bin/python benchmarks/bench_mix.py --records 100000
    .venv/bin/python benchmarks/bench_mix.py --reference-path /tmp/old  # also time another mixtune

The floor is one read-and-write pass over the same data, measured in the same run: read
every line of both inputs and write it to one output file (a line copy). A block copy
(``shutil.copyfileobj``, no lines at all) and a record pass (parse and re-serialise every
line) are printed for reference. Each measurement runs in its own child process, so the
peak RSS (ru_maxrss) is the mixer's alone, and timing starts after imports. Data
generation is not timed. The default options of ``mix_datasets`` are the
``examples-tokens`` case (examples mode, token counts on).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

WORDS = [
    "the",
    "a",
    "my",
    "card",
    "bank",
    "account",
    "transfer",
    "payment",
    "why",
    "how",
    "when",
    "can",
    "I",
    "you",
    "is",
    "not",
    "yet",
    "arrived",
    "top",
    "up",
    "refund",
    "cash",
    "machine",
    "pin",
    "exchange",
    "rate",
    "fee",
    "pending",
    "declined",
    "country",
    "travel",
    "phone",
    "app",
    "verify",
]

BASELINE = """
import json, resource, sys, time
start = time.perf_counter()
with open(sys.argv[3], "wb") as out:
    for path in sys.argv[1:3]:
        with open(path, "rb") as src:
            for line in src:
                out.write(line)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# A second reference: the cheapest pass that touches records (parse and re-serialise each line).
RECORD_PASS = """
import json, resource, sys, time
import orjson
start = time.perf_counter()
with open(sys.argv[3], "wb") as out:
    for path in sys.argv[1:3]:
        with open(path, "rb") as src:
            for line in src:
                out.write(orjson.dumps(orjson.loads(line)) + b"\\n")
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

BLOCK_COPY = """
import json, resource, shutil, sys, time
start = time.perf_counter()
with open(sys.argv[3], "wb") as out:
    for path in sys.argv[1:3]:
        with open(path, "rb") as src:
            shutil.copyfileobj(src, out, 8 << 20)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

MIX = """
import json, resource, sys, time
from mixtune.mixing import Catalog, mix_datasets
domain, general, out, unit, count_tokens = sys.argv[1:6]
catalog = Catalog.parse({"sources": [{"name": "general", "category": "general", "uri": general,
                                      "format": "prepared", "licence": "synthetic"}]})
spec = {"domain_percent": 50, "categories": {"general": 100}, "unit": unit, "seed": 7}
start = time.perf_counter()
manifest = mix_datasets(domain, catalog, spec, out, count_tokens=count_tokens == "1", workdir=sys.argv[6])
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "records": manifest.output.records,
                  "shares": {p.name: p.token_percent if unit == "tokens" else p.record_percent
                             for p in manifest.parts}}))
"""


def write_records(path: Path, count: int, seed: int, tag: str) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as handle:
        batch = []
        for index in range(count):
            question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
            answer = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
            record = {
                "schemaVersion": "bedrock-conversation-2024",
                "messages": [
                    {"role": "user", "content": [{"text": f"{tag} {index}: {question}"}]},
                    {"role": "assistant", "content": [{"text": answer}]},
                ],
            }
            batch.append(orjson.dumps(record))
            if len(batch) == 10000:
                handle.write(b"\n".join(batch) + b"\n")
                batch.clear()
        if batch:
            handle.write(b"\n".join(batch) + b"\n")


def run_child(code: str, *args: str, python_path: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": python_path} if python_path else None
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        raise SystemExit(f"child failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records per side (domain, general)")
    parser.add_argument("--workdir", default=None, help="folder for the data (default: a temporary folder)")
    parser.add_argument("--cases", default="all", help="comma list of: examples, examples-tokens, tokens")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure each case this many times, keep the best"
    )
    parser.add_argument(
        "--reference-path",
        default=None,
        help="also time the mix with the mixtune package found in this folder (PYTHONPATH), e.g. a previous version",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mixtune-bench-", dir=args.workdir) as tmp:
        folder = Path(tmp)
        domain, general = folder / "domain.jsonl", folder / "general.jsonl"
        write_records(domain, args.records, 1, "domain")
        write_records(general, args.records, 2, "general")
        size_mb = (domain.stat().st_size + general.stat().st_size) / 1e6
        print(f"data: {args.records:,} + {args.records:,} records, {size_mb:,.0f} MB", flush=True)
        cases = [
            ("examples", "examples, no token counts", "examples", "0"),
            ("examples-tokens", "examples, token counts", "examples", "1"),
            ("tokens", "unit tokens", "tokens", "1"),
        ]
        wanted = {c.strip() for c in args.cases.split(",")} if args.cases != "all" else {c[0] for c in cases}
        record_pass = run_child(RECORD_PASS, str(domain), str(general), str(folder / "records.jsonl"))
        print(f"record pass (parse + re-serialise every line): {record_pass['seconds']:.2f} s", flush=True)
        block_copy = run_child(BLOCK_COPY, str(domain), str(general), str(folder / "block.jsonl"))
        print(f"block copy (copyfileobj, 8 MB blocks): {block_copy['seconds']:.2f} s", flush=True)
        rows = []
        for key, label, unit, count_tokens in cases:
            if key not in wanted:
                continue
            best_baseline, best_mix, best_reference = None, None, None
            for attempt in range(args.repeat):
                # Baseline and mix alternate so that machine noise hits both alike.
                baseline = run_child(BASELINE, str(domain), str(general), str(folder / "baseline.jsonl"))
                # Each pass writes a new file, as the mix does: overwriting one costs more.
                (folder / "baseline.jsonl").unlink()
                out = folder / f"mix-{unit}-{count_tokens}-{attempt}"
                mix = run_child(MIX, str(domain), str(general), str(out), unit, count_tokens, str(folder))
                (out / "mixed.jsonl").unlink()
                best_baseline = min(best_baseline or baseline, baseline, key=lambda r: r["seconds"])
                best_mix = min(best_mix or mix, mix, key=lambda r: r["seconds"])
                if args.reference_path:
                    ref_out = folder / f"reference-{unit}-{count_tokens}-{attempt}"
                    reference = run_child(
                        MIX,
                        str(domain),
                        str(general),
                        str(ref_out),
                        unit,
                        count_tokens,
                        str(folder),
                        python_path=args.reference_path,
                    )
                    (ref_out / "mixed.jsonl").unlink()
                    best_reference = min(best_reference or reference, reference, key=lambda r: r["seconds"])
            ratio = best_mix["seconds"] / best_baseline["seconds"]
            rows.append((label, best_baseline, best_mix, ratio))
            if best_reference is not None:
                print(
                    f"{label:<28} reference mixtune {best_reference['seconds']:6.2f} s  "
                    f"ratio {best_reference['seconds'] / best_baseline['seconds']:4.2f}x  "
                    f"peak RSS {best_reference['peak_rss_mb']:6.0f} MB",
                    flush=True,
                )
            print(
                f"{label:<28} line copy {best_baseline['seconds']:6.2f} s  mix {best_mix['seconds']:6.2f} s  "
                f"ratio {ratio:4.2f}x  (vs block copy {best_mix['seconds'] / block_copy['seconds']:4.2f}x, vs record pass {best_mix['seconds'] / record_pass['seconds']:4.2f}x)  "
                f"mix peak RSS {best_mix['peak_rss_mb']:6.0f} MB  "
                f"(baseline RSS {best_baseline['peak_rss_mb']:.0f} MB)  shares {best_mix['shares']}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
