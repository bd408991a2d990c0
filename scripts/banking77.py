"""Banking77 (77 intents) through the service on this machine: its defaults, and a mix sweep.

The data is ``../shared/data/banking77/train.csv`` (columns ``text,category``); a seeded
sample of ``--per-label`` rows per intent is dropped into the local cloud's
``s3://mixtune-raw/incoming/`` as a CSV, so the S3 notification starts the run exactly as it
would on AWS. The general data is the full demo's cached self-rehearsal set (SmolLM2's answers
to 120 prompts of the prompt bank, of which 54 ended on their own; generated on first use,
about half an hour), listed in the catalog the service's mix reads.

``defaults`` (issue 20): one run configured by nothing but the service's defaults, apart from
the base model (a service setting), the steps, and an MMLU subset (all 14,042 questions, twice,
do not fit a CPU session). Then the same run by hand with the CLI (``mixtune prepare``, ``mixtune mix``,
``mixtune-evaluate``) with the flags a user had to set before the defaults were right:
``--domain-task classification --max-new-tokens 24``. The CLI's mix must be byte for byte
the service's (checked by sha256); training it again would give the same input to the same
config, so the service's adapter (copied out before the local cloud stops) is scored by hand
instead of training a second one. Both tables are printed, with how many tuned answers agree.

``sweep`` (issue 18): one run with ``sweep.arms`` 100/90/75 (75/25 is as far as 42 rehearsal
answers go at the mixer's 4x oversampling limit), general loss on rehearsal answers the mix
never saw, the arms table with intervals.

    .venv/bin/python scripts/banking77.py defaults --out /tmp/b77 --steps 40
    .venv/bin/python scripts/banking77.py sweep --out /tmp/b77-sweep --steps 40 --learning-rate 1e-3
    .venv/bin/python scripts/banking77.py defaults --out /tmp/b77-tiny --base-model tiny --steps 2 --per-label 2

Writes ``results.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from mixtune import layout
from mixtune.demo.data import catalog_text, rehearsal_data
from mixtune.demo.follow import RunFollower
from mixtune.demo.runner import FULL, MMLU_SUBJECTS, split_rehearsal

ROOT = Path(__file__).resolve().parents[1]
SHARED_CSV = ROOT.parent / "shared" / "data" / "banking77" / "train.csv"
SHARED_MMLU = ROOT.parent / "shared" / "data" / "mmlu"
GENERAL = "general"
DATASET_KEY = "incoming/banking77.csv"
HAND_FLAGS = ["--domain-task", "classification", "--max-new-tokens", "24"]


def sample_csv(source: Path, per_label: int, seed: int, target: Path) -> int:
    """``per_label`` rows of each intent (seeded), shuffled, as a CSV with the source's header."""
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        by_label: dict[str, list[dict[str, str]]] = {}
        for row in reader:
            by_label.setdefault(row["category"], []).append(row)
    rng = random.Random(seed)
    rows = [row for label in sorted(by_label) for row in rng.sample(by_label[label], per_label)]
    rng.shuffle(rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def mmlu_section(args: argparse.Namespace) -> dict[str, Any]:
    return {"mmlu_subjects": MMLU_SUBJECTS, "mmlu_limit_per_subject": args.mmlu_per_subject}


def mmlu_source() -> str:
    return str(SHARED_MMLU) if SHARED_MMLU.is_dir() else "auto"


def service_run(
    args: argparse.Namespace, dataset: Path, general: tuple[bytes, bytes], run_config: dict[str, Any]
) -> dict[str, Any]:
    """Drop ``dataset`` into a local cloud whose default run config is ``run_config``; follow
    the run to its end; return its record, its report summary and its eval.json files."""
    from mixtune.local.cloud import LocalCloud
    from mixtune.settings import Settings

    work_bucket = Settings().work_bucket
    settings = Settings().model_copy(
        update={
            "base_model": args.base_model,
            "catalog_uri": f"s3://{work_bucket}/{GENERAL}/catalog.json",
            "mmlu_source": mmlu_source(),
            "poll_seconds": 2,
            "max_runtime_s": 3600,
            "default_run_config": run_config,
        }
    )
    cloud = LocalCloud(port=0, api_port=0, state_dir=args.out / "local", settings=settings)
    started = time.monotonic()
    try:
        cloud.start()
        s3 = cloud.client("s3")
        for name, body in (("self-rehearsal.jsonl", general[0]), ("heldout.jsonl", general[1])):
            s3.put_object(Bucket=work_bucket, Key=f"{GENERAL}/{name}", Body=body)
        catalog = catalog_text("self-rehearsal.jsonl").encode()
        s3.put_object(Bucket=work_bucket, Key=f"{GENERAL}/catalog.json", Body=catalog)
        s3.upload_file(str(dataset), cloud.resources.raw_bucket, DATASET_KEY)
        follower = RunFollower(cloud.api_endpoint, s3, cloud.client("stepfunctions"), wait_for_run(cloud))
        snap = follower.snapshot()
        stage = None
        while not snap.done:
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"the run did not end within {args.timeout} s")
            time.sleep(10)
            snap = follower.snapshot()
            now = ((snap.run or {}).get("stage"), snap.status, snap.loss[-1] if snap.loss else None)
            if now != stage:
                stage = now
                print(
                    f"{time.monotonic() - started:7.0f}s  {snap.status} {now[0] or ''} {now[2] or ''}",
                    flush=True,
                )
        run = follower.run_record() or {}
        summary = report_summary(follower, run)
        lineage = run.get("lineage") or {}
        for uri, folder in ((lineage.get("adapter_uri"), "adapter"), (lineage.get("mixed_uri"), "mix")):
            if uri:
                download(s3, uri, args.out / "service" / folder)
        evals = {
            name: json.loads(
                follower.read_s3_text(uri if uri.endswith(".json") else layout.eval_result(uri)) or "null"
            )
            for name, uri in (run.get("lineage") or {}).get("eval_uris", {}).items()
        }
        return {"run": run, "summary": summary, "evals": evals, "wall_s": time.monotonic() - started}
    finally:
        cloud.stop()


def download(s3: Any, uri: str, folder: Path) -> None:
    """An S3 object (a .jsonl file), or every object under an S3 prefix, into ``folder``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    folder.mkdir(parents=True, exist_ok=True)
    if key.endswith(".jsonl"):
        s3.download_file(bucket, key, str(folder / key.rsplit("/", 1)[-1]))
        return
    prefix = key.rstrip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = folder / item["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))


def wait_for_run(cloud: Any) -> str:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{cloud.api_endpoint}/runs?dataset=banking77", timeout=60) as response:
            runs = json.loads(response.read()).get("runs", [])
        if runs:
            return str(runs[0]["run_id"])
        time.sleep(1)
    raise SystemExit("no run appeared for the dropped file within 300 s")


def report_summary(follower: RunFollower, run: dict[str, Any]) -> dict[str, Any] | None:
    """The report's summary.json: written when the outcome is announced, just after the end."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        uri = (run.get("lineage") or {}).get("run_report_uri")
        if uri:
            text = follower.read_s3_text(uri.rsplit("/", 1)[0] + "/summary.json")
            return json.loads(text) if text else None
        time.sleep(1)
        run = follower.run_record() or {}
    return None


def cli(*command: str, log: Path) -> None:
    """One CLI step, its output appended to ``log``; a failure stops the script."""
    print("$", " ".join(command), flush=True)
    with log.open("ab") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise SystemExit(f"exit {code}: {' '.join(command)} (see {log})")


def by_hand(args: argparse.Namespace, dataset: Path, rehearsal: bytes) -> dict[str, Any]:
    """The same run with the CLI and the flags set by hand: prepare and mix (which must give the
    service's mixed.jsonl byte for byte), then the base model and the service's adapter scored."""
    folder = args.out / "by-hand"
    general = folder / "general"
    general.mkdir(parents=True, exist_ok=True)
    (general / "self-rehearsal.jsonl").write_bytes(rehearsal)
    (general / "catalog.json").write_text(catalog_text("self-rehearsal.jsonl"), encoding="utf-8")
    # The service's default mix (mixtune.steps.mix: 70 % domain, the rest over the catalog).
    (folder / "spec.json").write_text(
        json.dumps({"domain_percent": 70, "categories": {"self_rehearsal": 100}})
    )
    log, py, started = folder / "commands.log", sys.executable, time.monotonic()
    prepared, mix = folder / "prepared", folder / "mix"
    cli(
        py,
        "-m",
        "mixtune.cli",
        "prepare",
        str(dataset),
        "--out",
        str(prepared),
        "--max-tokens",
        "1024",
        log=log,
    )
    cli(
        py, "-m", "mixtune.cli", "mix", "--domain", str(prepared / "prepared.jsonl"),
        "--catalog", str(general / "catalog.json"), "--spec", str(folder / "spec.json"),
        "--out", str(mix), "--decontaminate", str(prepared / "eval.jsonl"), log=log,
    )  # fmt: skip
    service_mix = args.out / "service" / "mix" / "mixed.jsonl"
    same_mix = service_mix.is_file() and sha256(service_mix) == sha256(mix / "mixed.jsonl")
    adapter = args.out / "service" / "adapter"
    evals = {}
    for name, extra in (("baseline", []), ("tuned", ["--adapter", str(adapter)])):
        cli(
            py, "-m", "mixtune_training.evaluate", "--base-model", args.base_model, *extra,
            "--domain-data", str(prepared / "eval.jsonl"), *HAND_FLAGS, "--mmlu-source", mmlu_source(),
            "--mmlu-subjects", ",".join(MMLU_SUBJECTS), "--mmlu-limit-per-subject", str(args.mmlu_per_subject),
            "--output", str(folder / f"eval-{name}"), log=log,
        )  # fmt: skip
        evals[name] = json.loads((folder / f"eval-{name}" / "eval.json").read_text())
    return {"evals": evals, "same_mix": same_mix, "wall_s": time.monotonic() - started}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def domain_row(label: str, evaluation: dict[str, Any] | None) -> str:
    if not evaluation:
        return f"| {label} | (no eval.json) |"
    domain, mmlu = evaluation.get("domain") or {}, evaluation.get("mmlu") or {}
    scores = domain.get("classification") or domain.get("freeform") or {}
    f1 = scores.get("macro_f1", scores.get("token_f1"))
    ci = scores.get("macro_f1_ci") or {}
    mmlu_ci = mmlu.get("micro_accuracy_ci") or {}
    return (
        f"| {label} | {domain.get('task')} | {domain.get('max_new_tokens')} | {domain.get('truncated')} "
        f"| {fmt(f1)} [{fmt(ci.get('low'))}, {fmt(ci.get('high'))}] | {fmt(scores.get('accuracy'))} "
        f"| {fmt(mmlu.get('micro_accuracy'))} [{fmt(mmlu_ci.get('low'))}, {fmt(mmlu_ci.get('high'))}] |"
    )


def fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def shared_answers(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    """How many items the two runs' tuned models answered alike (same item ids)."""
    items_a = ((a or {}).get("domain") or {}).get("items") or {}
    items_b = ((b or {}).get("domain") or {}).get("items") or {}
    pa = dict(zip(items_a.get("ids") or [], items_a.get("predicted") or [], strict=False))
    pb = dict(zip(items_b.get("ids") or [], items_b.get("predicted") or [], strict=False))
    common = [key for key in pa if key in pb]
    same = sum(pa[key] == pb[key] for key in common)
    return f"{same} of {len(common)} eval items answered alike by the two tuned models"


def defaults(args: argparse.Namespace, dataset: Path, rehearsal: bytes) -> dict[str, Any]:
    run_config = {"train": {"max_steps": args.steps}, "evaluation": mmlu_section(args)}
    service = service_run(args, dataset, (rehearsal, b""), run_config)
    hand = by_hand(args, dataset, rehearsal)
    header = "| run | task | max_new_tokens | truncated | macro-F1 [95% CI] | accuracy | MMLU [95% CI] |"
    lines = [header, "| --- | --- | ---: | ---: | --- | ---: | --- |"]
    for who, result in (("service defaults", service), ("CLI by hand", hand)):
        for name in ("baseline", "tuned"):
            lines.append(domain_row(f"{who}, {name}", result["evals"].get(name)))
    tuned = (service["evals"].get("tuned"), hand["evals"].get("tuned"))
    rule = ((tuned[0] or {}).get("domain") or {}).get("task_rule")
    print("\n".join(lines))
    print(
        f"service run: {service['run'].get('status')}, {service['wall_s']:.0f} s; by hand {hand['wall_s']:.0f} s"
    )
    print(f"task rule (service): {rule}")
    print(shared_answers(*tuned))
    print(f"the CLI's mixed.jsonl is the service's, byte for byte: {hand['same_mix']}")
    return {"service": service, "by_hand": hand, "table": lines, "agreement": shared_answers(*tuned)}


def sweep(args: argparse.Namespace, dataset: Path, general: tuple[bytes, bytes]) -> dict[str, Any]:
    from mixtune.settings import Settings
    from mixtune.sweeps.summary import ARM_COLUMNS, arm_table, sweep_of

    train = {"max_steps": args.steps, **({"learning_rate": args.learning_rate} if args.learning_rate else {})}
    run_config = {
        "train": train,
        "mix": {"categories": {"self_rehearsal": 100}},
        "evaluation": {
            **mmlu_section(args),
            "general_data": f"s3://{Settings().work_bucket}/{GENERAL}/heldout.jsonl",
            "general_limit": args.holdout,
        },
        "sweep": {"arms": args.arms, "max_concurrency": args.max_concurrency},
    }
    result = service_run(args, dataset, general, run_config)
    swept = sweep_of(result["run"].get("metrics"))
    lines = ["| " + " | ".join(ARM_COLUMNS) + " |", "|" + " --- |" * len(ARM_COLUMNS)]
    if swept:
        lines += [
            "| " + " | ".join(str(cell) for cell in row) + " |" for row in arm_table(swept, intervals=True)
        ]
    print("\n".join(lines))
    print(
        f"run: {result['run'].get('status')}, chosen {(swept or {}).get('chosen')}, {result['wall_s']:.0f} s"
    )
    for reason in (swept or {}).get("reasons", []):
        print(f"  {reason}")
    return {**result, "table": lines}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["defaults", "sweep"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--csv", type=Path, default=SHARED_CSV)
    parser.add_argument("--base-model", default="smollm2")
    parser.add_argument("--per-label", type=int, default=7, help="rows per intent dropped (7 x 77 = 539)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--learning-rate", type=float, default=None, help="sweep only; default: the service's"
    )
    parser.add_argument(
        "--arms", type=lambda s: [float(x) for x in s.split(",")], default=[100.0, 90.0, 75.0]
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=1,
        help="sweep only: arms trained at once (1: each arm's wall time is its own, one model in memory)",
    )
    parser.add_argument("--holdout", type=int, default=12, help="rehearsal answers kept out of every mix")
    parser.add_argument("--mmlu-per-subject", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=5400)
    args = parser.parse_args(argv)
    # `kill PID` stops the local cloud and its jobs too (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not args.csv.is_file():
        parser.error(f"{args.csv} not found (Banking77's train.csv with columns text,category)")
    args.out = args.out.resolve()
    dataset = args.out / "banking77.csv"
    rows = sample_csv(args.csv, args.per_label, args.seed, dataset)
    print(f"{rows} Banking77 rows ({args.per_label} per intent) -> {dataset}", flush=True)
    rehearsal, cached = rehearsal_data(
        args.base_model, FULL.rehearsal_prompts, FULL.rehearsal_max_new_tokens, 8, args.out / "rehearsal.log"
    )
    print(f"self-rehearsal {'(cached)' if cached else '(generated)'}: {rehearsal}", flush=True)
    if args.mode == "defaults":
        result = defaults(args, dataset, rehearsal.read_bytes())
    else:
        result = sweep(args, dataset, split_rehearsal(rehearsal, args.holdout, args.seed))
    (args.out / "results.json").write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
