"""A run's report inputs as the pipeline writes them: real models of dataprep, mixing and the
evaluation, dumped to JSON, so a schema change there shows here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mixtune.runs import Failure, Lineage, Run, RunConfig, RunStatus

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WORK = "s3://mixtune-work"
RUN_ID = "support-0123456789abcdef"


def lineage(run_id: str = RUN_ID) -> Lineage:
    runs = f"{WORK}/runs/{run_id}"
    return Lineage(
        source_uri="s3://mixtune-raw/incoming/support.jsonl",
        input_sha256="a" * 64,
        prepared_uri=f"{WORK}/datasets/{run_id}/",
        report_uri=f"{WORK}/datasets/{run_id}/report.json",
        output_sha256={"prepared.jsonl": "b" * 64, "mixed.jsonl": "c" * 64},
        manifest_uri=f"{runs}/mix/manifest.json",
        mixed_uri=f"{runs}/mix/mixed.jsonl",
        smoke_uri=f"{runs}/smoke/",
        train_uri=f"{runs}/train/",
        adapter_uri=f"{runs}/train/adapter",
        eval_uris={
            "baseline": f"{runs}/evaluate_baseline/eval.json",
            "tuned": f"{runs}/evaluate_tuned/eval.json",
        },
        job_ids={"train": f"{run_id}-train"},
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:mixtune-pipeline:{run_id}",
    )


def run(status: RunStatus = RunStatus.SUCCEEDED, **update: Any) -> Run:
    metrics = {
        "baseline": {
            "domain_task": "classification",
            "domain_f1": 0.10,
            "domain_n": 45,
            "mmlu_accuracy": 0.35,
            "mmlu_n": 40,
            "general_loss": 1.055,
        },
        "tuned": {
            "domain_task": "classification",
            "domain_f1": 0.743,
            "domain_n": 45,
            "mmlu_accuracy": 0.325,
            "mmlu_n": 40,
            "general_loss": 0.892,
        },
        "deltas": {"domain_f1_points": 64.3, "mmlu_points": -2.5, "general_loss": -0.163},
        "baseline_cached": False,
    }
    gate = {
        "promote": status == RunStatus.SUCCEEDED,
        "comparable": True,
        "domain_gain": 64.3,
        "general_drop": 2.5,
        "reasons": ["domain gain +64.30 pts >= required 1.00", "MMLU drop 2.50 pts <= budget 5.00"],
    }
    base = Run(
        run_id=RUN_ID,
        dataset="support",
        status=status,
        stage="record",
        config=RunConfig.model_validate(
            {"base_model": "smollm2", "backend": "local", "gate": {"max_general_drop": 5.0}}
        ),
        lineage=lineage(),
        summary="PROMOTE: ...",
        metrics=metrics,
        gate=gate,
    )
    return base.model_copy(update=update)


def prepare_report(accepted: bool = True) -> dict[str, Any]:
    from mixtune.dataprep import PrepareOptions
    from mixtune.dataprep.report import Counts, ErrorEntry, PrepareReport

    rejected = 11 if accepted else 30
    return PrepareReport(
        accepted=accepted,
        source_uri="s3://mixtune-raw/incoming/support.jsonl",
        out_uri=f"{WORK}/datasets/{RUN_ID}/",
        format="jsonl",
        shape="classification",
        labels=["card_lost", "refund_status"],
        counts=Counts(input=320, kept=320 - rejected, sanitized=10, rejected=rejected, train=264, eval=45),
        rule_counts={"empty_text": 7, "reserved_string": 3, "duplicate": 1}
        if accepted
        else {"empty_text": 30},
        sanitize_counts={"<|im_start|>": 6, "<|im_end|>": 4},
        reject_share=rejected / 320,
        reasons=[] if accepted else ["9.4% of records rejected > max_reject_share 5.0%"],
        errors=[
            ErrorEntry(line=17, rule="empty_text", message="messages[1] has empty text"),
            ErrorEntry(line=42, rule="reserved_string", message="messages[0] holds <|endoftext|>"),
        ],
        input_sha256="a" * 64,
        output_sha256={"prepared.jsonl": "b" * 64},
        options=PrepareOptions(),
    ).model_dump(mode="json")


def manifest() -> dict[str, Any]:
    from mixtune.mixing.manifest import MixManifest, OutputReport, PartReport, SourceReport
    from mixtune.mixing.spec import MixSpec

    return MixManifest(
        spec=MixSpec(domain_percent=75, categories={"self_rehearsal": 100}),
        seed=0,
        unit="examples",
        domain_uri=f"{WORK}/datasets/{RUN_ID}/prepared.jsonl",
        catalog_uri=f"{WORK}/general/catalog.json",
        sources=[
            SourceReport(
                name="domain",
                category="domain",
                uri=f"{WORK}/datasets/{RUN_ID}/prepared.jsonl",
                input_sha256="b" * 64,
                available_records=264,
                selected_records=264,
                target_share=75,
            ),
            SourceReport(
                name="self-rehearsal",
                category="self_rehearsal",
                uri=f"{WORK}/general/self-rehearsal.jsonl",
                input_sha256="d" * 64,
                available_records=44,
                selected_records=88,
                target_share=25,
                oversampled=True,
            ),
        ],
        parts=[
            PartReport(
                name="domain",
                target_percent=75,
                records=264,
                tokens=None,
                record_percent=75.0,
                token_percent=None,
            ),
            PartReport(
                name="self_rehearsal",
                target_percent=25,
                records=88,
                tokens=None,
                record_percent=25.0,
                token_percent=None,
            ),
        ],
        warnings=["source self-rehearsal has 44 records for 88 wanted: repeated"],
        output=OutputReport(
            uri=f"{WORK}/runs/{RUN_ID}/mix/mixed.jsonl", sha256="c" * 64, records=352, bytes=100000
        ),
    ).model_dump(mode="json")


def train_metrics(steps: int = 32) -> dict[str, Any]:
    curve = [{"step": s, "loss": round(2.4 * 0.95**s, 4)} for s in range(1, steps + 1)]
    return {
        "steps": steps,
        "train_loss": 1.0,
        "final_loss": curve[-1]["loss"],
        "loss_curve": curve,
        "tokens": 25000,
        "tokens_per_s": 95.0,
        "train_wall_time_s": 250.0,
        "wall_time_s": 262.5,
        "records": 352,
        "records_dropped_too_long": 0,
        "device": "cpu",
    }


def eval_json(f1: float, mmlu: float, loss: float, adapter: str | None, seconds: float) -> dict[str, Any]:
    from mixtune.evaluation import ClassificationScores, DomainScores, EvalResult, GeneralLoss, MmluScores

    return EvalResult(
        base_model="smollm2",
        adapter=adapter,
        config={},
        config_hash="h",
        domain=DomainScores(
            task="classification",
            n=45,
            classification=ClassificationScores(
                n=45, accuracy=f1 - 0.02, macro_f1=f1, micro_f1=f1, unknown_share=0.0, per_label_f1={}
            ),
        ),
        mmlu=MmluScores(n=40, shots=0, micro_accuracy=mmlu, macro_accuracy=mmlu, per_subject={}),
        general=GeneralLoss(n=12, loss=loss, tokens=600),
        wall_time_s=seconds,
    ).model_dump(mode="json")


def history(failed_state: str | None = None) -> list[dict[str, Any]]:
    """Step Functions events of a whole execution (or one that failed in ``failed_state``)."""
    events: list[dict[str, Any]] = []
    clock = [0.0]

    def state(name: str, seconds: float, kind: str = "Task") -> bool:
        events.append(
            {
                "type": f"{kind}StateEntered",
                "timestamp": T0 + timedelta(seconds=clock[0]),
                "stateEnteredEventDetails": {"name": name},
            }
        )
        clock[0] += seconds
        if name == failed_state:
            events.append(
                {
                    "type": "LambdaFunctionFailed",
                    "timestamp": T0 + timedelta(seconds=clock[0]),
                    "lambdaFunctionFailedEventDetails": {"error": "JobFailedError", "cause": "..."},
                }
            )
            events.append(
                {
                    "type": f"{kind}StateExited",
                    "timestamp": T0 + timedelta(seconds=clock[0]),
                    "stateExitedEventDetails": {"name": name},
                }
            )
            return False
        events.append(
            {
                "type": f"{kind}StateExited",
                "timestamp": T0 + timedelta(seconds=clock[0]),
                "stateExitedEventDetails": {"name": name},
            }
        )
        return True

    steps = [
        ("Mix", 1.0),
        ("SmokeTrainLaunch", 0.5),
        ("SmokeTrainPoll", 24.0),
        ("TrainLaunch", 0.5),
        ("TrainWait", 1.0),
        ("TrainPoll", 266.0),
        ("BaselineLookup", 0.7),
    ]
    for name, seconds in steps:
        if not state(name, seconds):
            state("MarkFailed", 0.5)
            state("NotifyFailure", 0.0)
            return events
    start = clock[0]
    state("EvaluateBaselineLaunch", 162.8)
    clock[0] = start
    state("EvaluateTunedLaunch", 177.4)
    for name, seconds in (("Record", 2.2), ("NotifyPromoted", 0.0)):
        state(name, seconds)
    return events


def inputs(status: RunStatus = RunStatus.SUCCEEDED, **run_update: Any) -> Any:
    """Everything a finished run's report reads."""
    from mixtune.report.inputs import ReportInputs

    failed = status == RunStatus.FAILED
    rejected = status == RunStatus.REJECTED
    the_run = run(status, **run_update)
    if failed:
        the_run = the_run.model_copy(
            update={
                "stage": "train",
                "metrics": None,
                "gate": None,
                "failure": Failure(
                    error="JobFailedError",
                    cause="train job support-train failed: CUDA out of memory at step 3",
                ),
            }
        )
    if rejected:
        return ReportInputs(
            run=the_run.model_copy(
                update={
                    "stage": "prepare",
                    "metrics": None,
                    "gate": None,
                    "lineage": Lineage(
                        source_uri=the_run.lineage.source_uri, report_uri=the_run.lineage.report_uri
                    ),
                }
            ),
            prepare_report=prepare_report(accepted=False),
        )
    return ReportInputs(
        run=the_run,
        prepare_report=prepare_report(),
        manifest=manifest(),
        train_metrics=None if failed else train_metrics(),
        train_progress=[{"step": 1, "max_steps": 32, "loss": 2.3}, {"step": 2, "max_steps": 32, "loss": 2.1}],
        smoke_metrics={
            "wall_time_s": 21.0,
            "loss_curve": [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.4}],
        },
        evals={}
        if failed
        else {
            "baseline": eval_json(0.10, 0.35, 1.055, None, 160.0),
            "tuned": eval_json(0.743, 0.325, 0.892, "adapter", 175.0),
        },
        history=history("TrainPoll" if failed else None),
    )
