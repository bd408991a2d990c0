"""A run's life outside the state machine: opened by a trigger, prepared, started.

Every trigger opens runs here: a dataset dropped in the raw bucket, ``POST /runs``, a
schedule's re-run, a schedule's re-evaluation. Preparation moves a run PENDING -> PREPARED
or REJECTED (a rejection is announced on SNS), and a PREPARED run's execution is started
once: the execution name is the run id. A dataset too large for Lambda, or one Lambda cannot
read, is handed to a prepare job instead (:mod:`mixtune.runs.placement`): its execution
starts while the run is PENDING, at the state machine's prepare job, and
:func:`conclude_prepare_job` concludes it from the job's report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mixtune import layout, storage
from mixtune.errors import IllegalTransition, RunAlreadyExists, RunConfigError
from mixtune.observability import logger, metrics
from mixtune.runs.ending import announce_once, fail_run
from mixtune.runs.execution import Mode, start_execution
from mixtune.runs.model import (
    Failure,
    Lineage,
    Placement,
    Run,
    RunConfig,
    RunStatus,
    Trigger,
    dataset_name,
    new_run_id,
    run_id_for_object,
)
from mixtune.runs.placement import prepare_placement, spilled_over, temp_budget_bytes, with_placement
from mixtune.runs.preparation import request_preparation
from mixtune.runs.repository import RunsRepository
from mixtune.runs.validation import run_config_for
from mixtune.settings import get_settings

if TYPE_CHECKING:
    from mixtune.dataprep import PrepareReport


class PrepareRequest(BaseModel):
    """One unit of the prepare function's work; its JSON is the idempotency key.

    A dropped file carries its object (``source_uri``), whose run is opened if new; the API
    and the schedule name a run they opened PENDING.
    """

    run_id: str
    source_uri: str = ""
    dataset: str = ""

    @classmethod
    def for_object(cls, bucket: str, key: str, version: str) -> PrepareRequest:
        """A dropped object; ``version`` is its version id, or its etag in an unversioned bucket."""
        return cls(
            run_id=run_id_for_object(bucket, key, version),
            source_uri=f"s3://{bucket}/{key}",
            dataset=dataset_name(key),
        )


class PrepareResult(BaseModel):
    run_id: str
    status: RunStatus
    execution_arn: str | None = None
    summary: str | None = None


def new_run(run_id: str, source_uri: str, trigger: Trigger, config: RunConfig, dataset: str = "") -> Run:
    """A PENDING run with its resolved config (:func:`mixtune.runs.validation.run_config_for`)."""
    return Run(
        run_id=run_id,
        dataset=dataset or dataset_name(source_uri),
        trigger=trigger,
        config=config,
        lineage=Lineage(source_uri=source_uri),
    )


def open_run(run: Run) -> tuple[Run, bool]:
    """Create the run, or find the one a duplicate trigger created: (run, created now)."""
    repo = RunsRepository.from_settings()
    try:
        return repo.create(run), True
    except RunAlreadyExists:
        return repo.get(run.run_id), False


def prepare_run(request: PrepareRequest) -> PrepareResult:
    """The prepare function's work: open a dropped file's run, prepare it, start it."""
    if request.source_uri:
        try:
            config = run_config_for({}, get_settings())
        except RunConfigError as exc:
            return refuse_dropped_file(request, exc)
        run, _ = open_run(new_run(request.run_id, request.source_uri, "s3", config, request.dataset))
    else:
        run = RunsRepository.from_settings().get(request.run_id)
    run = start_if_prepared(prepare_data(run))
    logger.info("prepare done", extra={"run_id": run.run_id, "status": run.status.value})
    return PrepareResult(
        run_id=run.run_id, status=run.status, execution_arn=run.lineage.execution_arn, summary=run.summary
    )


def refuse_dropped_file(request: PrepareRequest, exc: RunConfigError) -> PrepareResult:
    """The service's default run config is invalid (a deployment mistake): the dropped file's
    run ends FAILED with the problems, and is announced."""
    run, _ = fail_request(request, Failure(error=type(exc).__name__, cause=str(exc)))
    return PrepareResult(run_id=run.run_id, status=run.status, summary=run.summary)


def fail_request(request: PrepareRequest, failure: Failure) -> tuple[Run, bool]:
    """End a prepare request's run FAILED (announced once; see ``fail_run``); a dropped file
    whose run was never opened gets one, so its owner hears of it."""
    if request.source_uri:
        open_run(new_run(request.run_id, request.source_uri, "s3", RunConfig(), request.dataset))
    return fail_run(request.run_id, failure, stop=False)  # a run before its execution has no jobs


def prepare_data(run: Run) -> Run:
    """PENDING -> PREPARED or REJECTED (announced), with the report's hashes and URIs in the
    lineage; or, for a dataset too large for Lambda (or that Lambda cannot read), PENDING with
    its execution started at the prepare job (see :mod:`mixtune.runs.placement`). A run past
    PENDING is returned as it is."""
    from mixtune.dataprep import DatasetError, SpillBudgetExceeded, prepare_dataset

    if run.status == RunStatus.REJECTED:
        announce_once(run)  # an earlier pass rejected it and may have died before announcing
    if run.status != RunStatus.PENDING:
        return run
    earlier = run.lineage.placement.get("prepare")
    if earlier is not None and earlier.runs_on == "job":
        return start_prepare_job(run, earlier)  # an earlier pass handed it over
    settings = get_settings()
    folder = layout.dataset_folder(settings.work_bucket, run.run_id)
    options = run.config.prepare_options()
    source = run.lineage.source_uri
    try:
        size: int | None = storage.size(source)
    except FileNotFoundError:  # preparation rejects it below, with a message naming the file
        size = None
        placement = Placement(runs_on="lambda", reason="no object to measure")
    else:
        placement = prepare_placement(source, size, options.format, settings)
        if placement.runs_on == "job":
            return start_prepare_job(run, placement)
    budget = temp_budget_bytes(settings)
    if budget is not None:
        limit = min(budget, options.spill_budget_bytes or budget)
        options = options.model_copy(update={"spill_budget_bytes": limit})
    try:
        report = prepare_dataset(source, folder, options)
    except DatasetError as exc:
        run = conclude(run.run_id, RunStatus.REJECTED, stage="prepare", summary=str(exc)[:1000])
        return counted(run)
    except SpillBudgetExceeded as exc:  # the data is fine, /tmp is too small: a job goes on
        return start_prepare_job(run, spilled_over(exc, size))
    return conclude_report(run, report, folder, placement)


def conclude_report(run: Run, report: PrepareReport, folder: str, placement: Placement) -> Run:
    """PENDING -> PREPARED or REJECTED (announced) from a preparation's report, in Lambda or
    after the prepare job."""
    status = RunStatus.PREPARED if report.accepted else RunStatus.REJECTED
    lineage = {
        "output_sha256": dict(report.output_sha256),
        "prepared_uri": folder,
        "report_uri": layout.prepare_report(folder),
        "placement": with_placement(run, "prepare", placement),
    }
    if report.input_sha256:  # none for a file unusable as a whole (a job's --exit-zero report)
        lineage["input_sha256"] = report.input_sha256
    planned = {"sizing": eval_sizing(run.config, report.counts.eval)} if report.accepted else {}
    run = conclude(run.run_id, status, stage="prepare", summary=report.summary(), lineage=lineage, **planned)
    return counted(run)


def counted(run: Run) -> Run:
    """The metric of a concluded preparation; a rejection is announced."""
    metrics.add_metric(
        name="DatasetsAccepted" if run.status == RunStatus.PREPARED else "DatasetsRejected",
        unit="Count",
        value=1,
    )
    if run.status == RunStatus.REJECTED:
        announce_once(run)
    return run


def eval_sizing(config: RunConfig, eval_records: int | None) -> dict[str, Any]:
    """What the run's eval sets can detect against its gate, before it trains."""
    from mixtune.evaluation import GatePolicy
    from mixtune.evaluation.sizing import plan_sizing

    return plan_sizing(config.evaluation, eval_records, GatePolicy.model_validate(config.gate)).record()


def start_prepare_job(run: Run, placement: Placement) -> Run:
    """Hand a PENDING run to a prepare job: record where and why, and start its execution at
    the prepare job (the state machine's ``PrepareLaunch``; ``PrepareConclude`` concludes
    it). Once only: the execution name is the run id."""
    repo = RunsRepository.from_settings()
    settings = get_settings()
    if run.lineage.execution_arn:
        return run
    folder = layout.dataset_folder(settings.work_bucket, run.run_id)
    run = repo.update(
        run.run_id,
        stage="prepare",
        summary=f"preparing as a job: {placement.reason}"[:1000],
        lineage={"prepared_uri": folder, "placement": with_placement(run, "prepare", placement)},
    )
    handover = {**placement.model_dump(mode="json"), "source_uri": run.lineage.source_uri}
    arn = start_execution(settings.state_machine_arn, run, "train", prepare=handover)
    logger.info("prepare handed to a job", extra={"run_id": run.run_id, "reason": placement.reason})
    metrics.add_metric(name="PreparesAsJobs", unit="Count", value=1)
    return repo.update(run.run_id, lineage={"execution_arn": arn})


def conclude_prepare_job(run_id: str) -> Run:
    """After the prepare job: the run PREPARED or REJECTED (announced) from the job's report.
    A retry finds the run concluded and returns it as it is."""
    from mixtune.dataprep import PrepareReport

    repo = RunsRepository.from_settings()
    run = repo.get(run_id)
    if run.status == RunStatus.REJECTED:
        announce_once(run)  # an earlier attempt concluded it and may have died before announcing
    if run.status != RunStatus.PENDING:
        return run
    folder = run.lineage.prepared_uri or layout.dataset_folder(get_settings().work_bucket, run_id)
    report = PrepareReport.model_validate_json(storage.read_bytes(layout.prepare_report(folder)))
    placement = run.lineage.placement.get("prepare") or Placement(runs_on="job", reason="prepared by a job")
    return conclude_report(run, report, folder, placement)


def conclude(run_id: str, status: RunStatus, **fields: Any) -> Run:
    """PENDING -> PREPARED/REJECTED; when a concurrent pass over the same run (a duplicate
    event) concluded first, its outcome stands and is returned (no IllegalTransition)."""
    repo = RunsRepository.from_settings()
    try:
        return repo.transition(run_id, status, **fields)
    except IllegalTransition:
        run = repo.get(run_id)
        if run.status == RunStatus.PENDING:
            raise
        logger.info("another pass prepared this run", extra={"run_id": run_id, "status": run.status.value})
        return run


def start_if_prepared(run: Run, mode: Mode = "train", **extra: object) -> Run:
    """Start a PREPARED run's execution unless an earlier attempt did (a retry whose first
    attempt prepared the data but did not start it lands here)."""
    if run.status != RunStatus.PREPARED or run.lineage.execution_arn:
        return run
    arn = start_execution(get_settings().state_machine_arn, run, mode, **extra)
    return RunsRepository.from_settings().update(run.run_id, lineage={"execution_arn": arn})


def request_run(source_uri: str, dataset: str | None, requested: dict[str, Any]) -> Run:
    """``POST /runs``: a new PENDING run handed to the prepare function. ``requested`` holds
    the config fields the request set (over the service default); a config that breaks a
    rule raises RunConfigError and creates nothing. A run the prepare function could not be
    reached for is marked FAILED, never left PENDING."""
    config = run_config_for(requested, get_settings())
    name = dataset_name(dataset or source_uri)
    run, _ = open_run(new_run(new_run_id(name), source_uri, "api", config, name))
    hand_to_prepare(run)
    logger.info("run requested", extra={"run_id": run.run_id, "dataset": run.dataset})
    metrics.add_metric(name="RunsRequested", unit="Count", value=1)
    return run


def hand_to_prepare(run: Run) -> None:
    """Invoke the prepare function for a PENDING run, or end the run FAILED (announced) and raise."""
    try:
        request_preparation(get_settings().prepare_function_name, run.run_id)
    except Exception as exc:
        fail_run(run.run_id, Failure(error=type(exc).__name__, cause=str(exc)), stop=False)
        raise


def rerun_datasets(event_id: str, datasets: list[str]) -> list[Run]:
    """A schedule's re-run: one new run per dataset; a re-delivered event (same id) opens none."""
    config = run_config_for({}, get_settings())
    started = []
    for uri in datasets:
        run, created = open_run(new_run(scheduled_run_id(event_id, uri), uri, "schedule", config))
        if not created:
            logger.info("scheduled run exists already", extra={"run_id": run.run_id})
            continue
        hand_to_prepare(run)
        started.append(run)
    return started


def scheduled_run_id(event_id: str, dataset_uri: str) -> str:
    """The run a schedule's event opens for a dataset: the same event, the same run."""
    bucket, _, key = dataset_uri.removeprefix("s3://").partition("/")
    return run_id_for_object(bucket, key, f"schedule:{event_id}")


def reevaluate_promoted(event_id: str) -> tuple[Run, str] | None:
    """Score the promoted adapter again (new eval config, new MMLU data...): a run that skips
    mixing and training (the state machine's ``Route`` state). Returns the new run and the id
    of the run it re-scores; None when there is nothing (new) to re-evaluate."""
    from mixtune.steps.state import JobSlot

    settings = get_settings()
    repo = RunsRepository.from_settings()
    promoted = repo.get_promoted(settings.base_model)
    if promoted is None:
        logger.info("no promoted adapter to re-evaluate", extra={"base_model": settings.base_model})
        return None
    source = repo.get(promoted.run_id)
    run = Run(
        run_id=run_id_for_object("reevaluate", promoted.run_id, event_id),
        dataset=promoted.source_dataset,
        trigger="schedule",
        stage="reevaluate",
        config=source.config,
        lineage=Lineage(
            source_uri=source.lineage.source_uri,
            input_sha256=source.lineage.input_sha256,
            prepared_uri=source.lineage.prepared_uri,
            output_sha256=source.lineage.output_sha256,  # the eval split's hash keys its baseline
            train_uri=promoted.train_uri,
            adapter_uri=promoted.adapter_uri,
        ),
    )
    run, created = open_run(run)
    if not created:
        return None
    run = repo.transition(run.run_id, RunStatus.PREPARED, summary=f"re-evaluation of run {promoted.run_id}")
    train = JobSlot(kind="train", job={}, output_uri=promoted.train_uri, state="SUCCEEDED")
    return start_if_prepared(run, "reevaluate", train=train.model_dump(mode="json")), promoted.run_id
