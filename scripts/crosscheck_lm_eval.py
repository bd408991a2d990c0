"""Cross-check our MMLU accuracy against lm-evaluation-harness on one small model and a subset.

1. Builds a separate venv for lm-eval (default /tmp/mixtune-lmeval-venv, outside the repo) unless it
   exists: ``torch==2.13.0`` (the CPU wheel on local disk) and ``lm-eval[hf]==0.4.13``; refuses to
   go on if lm-eval's dependencies moved torch off 2.13.0.
2. Takes the first ``--limit`` test questions of each ``--subjects`` subject from
   ``../shared/data/mmlu`` (with our own loader) and writes them twice, from the same list: CSVs for
   our evaluator and a JSONL for a local lm-eval task (``scripts/lm_eval_task/``, lm-eval's own
   ``mmlu`` prompt, 0-shot).
3. Runs ``lm_eval --model hf`` (float32, CPU, offline) in that venv on the base model folder that
   ``mixtune_training.models.resolve_base_model`` gives (default ``smollm2``).
4. Runs ``python -m mixtune_training.evaluate`` (MMLU only) on the same folder and questions.
5. Checks that every prompt lm-eval scored equals ``mixtune.evaluation.mmlu.build_prompt``, prints
   both micro accuracies and the difference in points; exit 1 when it exceeds ``--tolerance``.
6. Token ids and log-likelihoods, request by request: lm-eval's own ``HFLM._encode_pair`` (run in
   its venv) against our ``encode_pair``, and the log-likelihoods lm-eval logged against ours
   (``continuation_logprobs``); any differing ids, or a log-likelihood off by more than
   ``--logprob-tolerance``, fails the check.

    .venv/bin/python scripts/crosscheck_lm_eval.py                 # ~5 min on 2 cores once the venv exists
    .venv/bin/python scripts/crosscheck_lm_eval.py --base-model tiny-llama3   # a tokenizer that adds BOS

``tiny-llama3`` is the tiny random Llama with a Llama-3-style tokenizer (it prepends
``<|begin_of_text|>``, as Llama 3, Gemma and Mistral tokenizers do), built into the work folder.

Exit status: 0 agree (or skipped: no ../shared/data/mmlu), 1 differ by more than the tolerance
or prompts differ, 2 setup failure.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from mixtune.evaluation import EvalResult
from mixtune.evaluation.mmlu import LETTERS, MmluQuestion, build_prompt, load_mmlu

REPO = Path(__file__).resolve().parents[1]
TASK_TEMPLATE = REPO / "scripts" / "lm_eval_task" / "mmlu_mixtune_subset.yaml"
TASK_NAME = "mmlu_mixtune_subset"
TORCH_PIN = "torch==2.13.0"
LM_EVAL_PIN = "lm-eval[hf]==0.4.13"  # the `hf` extra brings transformers, accelerate and peft
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",  # the `json` builder is packaged with datasets: no hub needed
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class SetupError(Exception):
    """The check could not run (venv, model, data or a tool failed)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/mixtune-lmeval-venv"))
    parser.add_argument("--python", default="python3.11", help="interpreter that creates the venv")
    parser.add_argument("--mmlu-dir", type=Path, default=REPO.parent / "shared" / "data" / "mmlu")
    parser.add_argument("--subjects", default="anatomy,astronomy,marketing")
    parser.add_argument("--limit", type=int, default=40, help="questions per subject (file order)")
    parser.add_argument(
        "--base-model", default="smollm2", help="a name resolve_base_model knows, or tiny-llama3 (BOS-adding)"
    )
    parser.add_argument("--logprob-tolerance", type=float, default=1e-3, help="nats, per request")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tolerance", type=float, default=0.5, help="points")
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary folder")
    return parser


def run(cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Run a step with its output in ``log``; on failure show the log's tail."""
    print("$ " + " ".join(cmd), flush=True)
    with log.open("w") as out:
        status = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd).returncode
    if status != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SetupError(f"{cmd[0]} exited {status} (log: {log})\n{tail}")


def ensure_venv(venv: Path, python: str, logs: Path) -> Path:
    bin_dir = venv / "bin"
    if not (bin_dir / "lm_eval").is_file():
        print(f"building the lm-eval venv in {venv}", flush=True)
        run([python, "-m", "venv", str(venv)], logs / "venv.log")
        run([str(bin_dir / "pip"), "install", "-q", TORCH_PIN, LM_EVAL_PIN], logs / "pip.log")
    versions = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import importlib.metadata as m; print(*(m.version(p) for p in "
            "('torch', 'lm_eval', 'transformers')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    torch_version, lm_eval_version, transformers_version = versions
    if torch_version.split("+")[0] != TORCH_PIN.split("==")[1]:
        raise SetupError(f"{venv}: torch {torch_version}, expected {TORCH_PIN}; remove the venv and rerun")
    print(
        f"lm-eval venv: lm_eval {lm_eval_version}, torch {torch_version}, transformers {transformers_version}"
    )
    return bin_dir


def write_subset(questions: list[MmluQuestion], workdir: Path) -> tuple[Path, Path]:
    """The same questions as CSVs (our evaluator's folder layout) and as one JSONL (lm-eval)."""
    csv_root = workdir / "mmlu"
    (csv_root / "test").mkdir(parents=True, exist_ok=True)
    by_subject: dict[str, list[MmluQuestion]] = {}
    for q in questions:
        by_subject.setdefault(q.subject, []).append(q)
    for subject, items in by_subject.items():
        with (csv_root / "test" / f"{subject}_test.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["question", "choice0", "choice1", "choice2", "choice3", "answer"])
            writer.writerows([q.question, *q.choices, q.answer] for q in items)
    jsonl = workdir / "mmlu_subset.jsonl"
    with jsonl.open("w", encoding="utf-8") as f:
        for q in questions:
            row = {
                "subject": q.subject.replace("_", " "),
                "question": q.question,
                "choices": list(q.choices),
                "answer": q.answer,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return csv_root, jsonl


def write_task(jsonl: Path, workdir: Path) -> Path:
    task_dir = workdir / "task"
    task_dir.mkdir(exist_ok=True)
    text = TASK_TEMPLATE.read_text(encoding="utf-8").replace("__TEST_JSONL__", json.dumps(str(jsonl)))
    (task_dir / TASK_TEMPLATE.name).write_text(text, encoding="utf-8")
    return task_dir


def run_lm_eval(bin_dir: Path, model_dir: Path, task_dir: Path, workdir: Path, batch_size: int) -> Path:
    out = workdir / "lm_eval_out"
    if any(out.rglob("results_*.json")):
        print(f"reusing the lm-eval results in {out} (remove it to run lm-eval again)", flush=True)
        return out
    env = {**os.environ, **OFFLINE_ENV, "HF_DATASETS_CACHE": str(workdir / "hf_datasets_cache")}
    cmd = [
        str(bin_dir / "lm_eval"),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model_dir},dtype=float32",
        "--tasks",
        TASK_NAME,
        "--include_path",
        str(task_dir),
        "--num_fewshot",
        "0",
        "--device",
        "cpu",
        "--batch_size",
        str(batch_size),
        "--output_path",
        str(out),
        "--log_samples",
    ]
    run(cmd, workdir / "lm_eval.log", env=env, cwd=workdir)
    return out


def lm_eval_outputs(out: Path) -> tuple[float, list[dict]]:
    results = sorted(out.rglob("results_*.json"))
    samples = sorted(out.rglob(f"samples_{TASK_NAME}_*.jsonl"))
    if not results or not samples:
        raise SetupError(f"no lm-eval results or samples under {out}")
    accuracy = json.loads(results[-1].read_text())["results"][TASK_NAME]["acc,none"]
    rows = [json.loads(line) for line in samples[-1].read_text().splitlines() if line.strip()]
    return float(accuracy), rows


def _request_args(sample: dict) -> list[tuple[str, str]]:
    """(context, continuation) of each loglikelihood request in a logged lm-eval sample."""
    arguments = sample["arguments"]
    items = arguments.values() if isinstance(arguments, dict) else arguments
    pairs = []
    for item in items:
        values = list(item.values()) if isinstance(item, dict) else list(item)
        pairs.append((str(values[0]), str(values[1])))
    return pairs


def prompt_mismatches(samples: list[dict], questions: list[MmluQuestion]) -> list[str]:
    """Where lm-eval's (context, continuation) differ from ours; empty when identical."""
    by_key = {(q.subject.replace("_", " "), q.question): q for q in questions}
    problems: list[str] = []
    for sample in samples:
        doc = sample["doc"]
        q = by_key.get((doc["subject"], doc["question"]))
        if q is None:
            problems.append(f"doc {sample.get('doc_id')}: not in our subset")
            continue
        expected = [(build_prompt(q), " " + letter) for letter in LETTERS]
        got = _request_args(sample)
        if got != expected:
            problems.append(f"doc {sample.get('doc_id')}: lm-eval {got[0]!r} vs ours {expected[0]!r}")
    if len(samples) != len(questions):
        problems.append(f"lm-eval scored {len(samples)} questions, ours {len(questions)}")
    return problems


def lm_eval_per_subject(samples: list[dict]) -> dict[str, tuple[int, int]]:
    """(correct, n) per subject from lm-eval's per-sample ``acc``, keyed like our subjects."""
    counts: dict[str, tuple[int, int]] = {}
    for sample in samples:
        subject = sample["doc"]["subject"].replace(" ", "_")
        correct, n = counts.get(subject, (0, 0))
        counts[subject] = (correct + int(float(sample["acc"]) == 1.0), n + 1)
    return dict(sorted(counts.items()))


def run_ours(
    model_dir: Path, csv_root: Path, subjects: list[str], workdir: Path, batch_size: int
) -> EvalResult:
    out = workdir / "ours"
    cmd = [
        sys.executable,
        "-m",
        "mixtune_training.evaluate",
        "--base-model",
        str(model_dir),
        "--mmlu",
        "--mmlu-source",
        str(csv_root),
        "--mmlu-subjects",
        ",".join(subjects),
        "--mmlu-shots",
        "0",
        "--batch-size",
        str(batch_size),
        "--output",
        str(out),
    ]
    run(cmd, workdir / "ours.log", env={**os.environ, **OFFLINE_ENV})
    return EvalResult.model_validate_json((out / "eval.json").read_text())


LM_EVAL_ENCODE = """
import json, sys
from lm_eval.models.huggingface import HFLM
lm = HFLM(pretrained=sys.argv[1], device="cpu", dtype="float32")
pairs = json.load(open(sys.argv[2]))
json.dump([lm._encode_pair(context, continuation) for context, continuation in pairs], open(sys.argv[3], "w"))
"""


def resolve_model(name: str, workdir: Path) -> Path:
    if name == "tiny-llama3":
        from mixtune_training.tiny import build_tiny

        folder = workdir / "tiny-llama3"
        return folder if (folder / "config.json").is_file() else build_tiny(folder, style="llama3")
    from mixtune_training.models import resolve_base_model

    return Path(resolve_base_model(name))


def lm_eval_token_ids(bin_dir: Path, model_dir: Path, pairs: list[tuple[str, str]], workdir: Path) -> list:
    """lm-eval's own encoding of each (context, continuation), run in its venv."""
    script, requests, out = (
        workdir / "lm_eval_encode.py",
        workdir / "requests.json",
        workdir / "lm_eval_ids.json",
    )
    script.write_text(LM_EVAL_ENCODE)
    requests.write_text(json.dumps(pairs))
    env = {**os.environ, **OFFLINE_ENV}
    run(
        [str(bin_dir / "python"), str(script), str(model_dir), str(requests), str(out)],
        workdir / "encode.log",
        env,
    )
    return [(list(ctx), list(cont)) for ctx, cont in json.loads(out.read_text())]


def request_level_check(
    bin_dir: Path, model_dir: Path, samples: list[dict], workdir: Path, batch_size: int
) -> tuple[int, int, float]:
    """(requests, requests whose token ids differ, largest log-likelihood difference in nats)."""
    from mixtune_training.models import load_for_inference
    from mixtune_training.scoring import continuation_logprobs, encode_pair

    pairs = [pair for sample in samples for pair in _request_args(sample)]
    theirs_ll = [float(resp[0]) for sample in samples for resp in sample["filtered_resps"]]
    theirs_ids = lm_eval_token_ids(bin_dir, model_dir, pairs, workdir)
    model, tokenizer = load_for_inference(str(model_dir))
    ours_ids = [encode_pair(tokenizer, ctx, cont) for ctx, cont in pairs]
    differing = sum(1 for a, b in zip(ours_ids, theirs_ids, strict=True) if (list(a[0]), list(a[1])) != b)
    ours_ll = continuation_logprobs(model, ours_ids, batch_size, max_length=1024, limit=1 << 20)
    worst = max(abs(a - b) for a, b in zip(ours_ll, theirs_ll, strict=True))
    return len(pairs), differing, worst


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.mmlu_dir / "test").is_dir():
        print(f"SKIPPED: no MMLU data at {args.mmlu_dir} (expects test/<subject>_test.csv)")
        return 0
    os.nice(10)  # a shared machine: the children inherit it
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mixtune-lmeval-check-"))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    subjects = [s.strip() for s in args.subjects.split(",") if s.strip()]
    try:
        model_dir = resolve_model(args.base_model, workdir)
        if not (model_dir / "config.json").is_file():
            raise SetupError(f"{args.base_model} did not resolve to a local model folder: {model_dir}")
        questions = load_mmlu(args.mmlu_dir, "test", subjects, args.limit)
        csv_root, jsonl = write_subset(questions, workdir)
        task_dir = write_task(jsonl, workdir)
        bin_dir = ensure_venv(args.venv, args.python, workdir)
        lm_out = run_lm_eval(bin_dir, model_dir, task_dir, workdir, args.batch_size)
        theirs, samples = lm_eval_outputs(lm_out)
        ours_result = run_ours(model_dir, csv_root, subjects, workdir, args.batch_size)
        requests, differing_ids, worst_ll = request_level_check(
            bin_dir, model_dir, samples, workdir, args.batch_size
        )
    except (SetupError, FileNotFoundError, ValueError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    if ours_result.mmlu is None:
        print("ERROR: our eval.json has no MMLU scores", file=sys.stderr)
        return 2
    ours = ours_result.mmlu.micro_accuracy
    mismatches = prompt_mismatches(samples, questions)
    diff = 100 * (ours - theirs)
    print(f"model: {model_dir} (float32, CPU)")
    print(f"subset: {', '.join(subjects)} x first {args.limit} test questions = {len(questions)}, 0-shot")
    print(f"prompts identical to ours: {len(samples) - len(mismatches)}/{len(questions)}")
    for problem in mismatches[:5]:
        print(f"  prompt differs: {problem}")
    theirs_by_subject = lm_eval_per_subject(samples)
    ours_by_subject = {k: (v.correct, v.n) for k, v in ours_result.mmlu.per_subject.items()}
    for subject in sorted(set(theirs_by_subject) | set(ours_by_subject)):
        c_theirs, n_theirs = theirs_by_subject.get(subject, (0, 0))
        c_ours, n_ours = ours_by_subject.get(subject, (0, 0))
        print(f"  {subject:<28} lm-eval {c_theirs}/{n_theirs}   ours {c_ours}/{n_ours}")
    print(f"lm-eval acc (micro): {100 * theirs:.2f}")
    print(f"ours micro_accuracy: {100 * ours:.2f}")
    print(f"difference:          {diff:+.2f} points (tolerance {args.tolerance})")
    print(f"token ids identical to lm-eval's _encode_pair: {requests - differing_ids}/{requests} requests")
    print(f"largest log-likelihood difference: {worst_ll:.2e} nats (tolerance {args.logprob_tolerance:g})")
    print(f"work folder: {workdir}")
    if abs(diff) > args.tolerance or mismatches or differing_ids or worst_ll > args.logprob_tolerance:
        print("FAIL")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
