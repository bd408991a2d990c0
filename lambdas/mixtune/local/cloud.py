"""The local cloud: moto's server plus what it lacks, with the service deployed into it.

``LocalCloud(port=0).start()`` (or ``with LocalCloud() as cloud:``) runs, in this process:
moto's threaded server on 127.0.0.1 with Step Functions execution on; a Lambda runtime
that runs the handlers (warm worker processes by default); asynchronous S3 notifications;
EventBridge Lambda/Step Functions targets and a schedule clock; and the API Gateway proxy.
It then deploys the service (:mod:`mixtune.local.deploy`) and writes the state file that
`mixtune local down`, `mixtune runs` and the demo read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from mixtune.backends.local import LocalBackend
from mixtune.local import deploy
from mixtune.local.apigw import ApiProxy
from mixtune.local.async_invoke import in_background
from mixtune.local.aws import ACCOUNT_ID, CREDENTIALS, REGION, local_client
from mixtune.local.eventbridge import Scheduler, eventbridge_targets
from mixtune.local.invoke import lambda_runtime
from mixtune.local.state import DEFAULT_STATE_DIR, LocalState, Resources, clear_state, write_state
from mixtune.local.stepfunctions import aws_error_names, execution_status_events
from mixtune.local.warm import WarmPool
from mixtune.settings import Settings

log = logging.getLogger("mixtune.local")

LambdaMode = Literal["warm", "subprocess", "in_process"]
DEFAULT_SCHEDULE = "rate(1 day)"
LOCAL_DEFAULTS: dict[str, Any] = {"poll_seconds": 1, "max_runtime_s": 1800}


@contextlib.contextmanager
def async_s3_notifications() -> Iterator[None]:
    """S3 invokes a notification's Lambda asynchronously (with Lambda's retries and on-failure
    destination, :mod:`mixtune.local.async_invoke`); moto does it once, inside the PUT."""
    from moto.awslambda.utils import get_backend
    from moto.s3 import notifications

    original = notifications._invoke_awslambda

    def invoke_later(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        in_background(get_backend(account_id, region_name).get_function(fn_arn), event_body)

    notifications._invoke_awslambda = invoke_later
    try:
        yield
    finally:
        notifications._invoke_awslambda = original


@contextlib.contextmanager
def complete_s3_notifications() -> Iterator[None]:
    """S3 notifications with every field S3 documents (moto leaves out the requester, the
    request ids, the sequencer and the version id), so handlers parse what AWS sends."""
    from moto.s3 import notifications

    original = notifications._get_s3_event

    def complete(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        for record in event["Records"]:
            record.setdefault("userIdentity", {"principalId": f"AWS:{ACCOUNT_ID}"})
            record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
            record.setdefault(
                "responseElements", {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "local"}
            )
            record["s3"]["bucket"].setdefault("ownerIdentity", {"principalId": ACCOUNT_ID})
            obj = record["s3"]["object"]
            obj.setdefault("sequencer", f"{time.time_ns():X}")
            if getattr(key, "version_id", None) not in (None, "null"):
                obj.setdefault("versionId", key.version_id)
        return event

    notifications._get_s3_event = complete
    try:
        yield
    finally:
        notifications._get_s3_event = original


@contextlib.contextmanager
def async_event_invokes() -> Iterator[None]:
    """``InvocationType=Event`` returns at once and runs later with Lambda's retries and
    on-failure destination, as in Lambda; moto runs it once and waits for it."""
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.invoke

    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        headers = {str(k).lower(): v for k, v in dict(request_headers or {}).items()}
        if headers.get("x-amz-invocation-type") != "Event":
            return original(self, body, request_headers, response_headers)
        in_background(self, body or "{}")
        return ""

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    try:
        yield
    finally:
        LambdaFunction.invoke = original  # type: ignore[method-assign]


def _descendants(pid: int) -> list[Any]:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def stop_processes(processes: list[Any], timeout_s: float = 10.0) -> None:
    """Terminate these psutil processes (by PID), then kill what is left."""
    import psutil

    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
            alive.append(process)
    _, still = psutil.wait_procs(alive, timeout=timeout_s)
    for process in still:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(still, timeout=timeout_s)


class LocalCloud:
    def __init__(
        self,
        port: int = 0,
        api_port: int = 0,
        lambda_mode: LambdaMode = "warm",
        state_dir: Path | str | None = None,
        settings: Settings | None = None,
        schedule: str = DEFAULT_SCHEDULE,
        write_state_file: bool = True,
        function_sizes: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        self.requested_port = port
        self.requested_api_port = api_port
        self.lambda_mode = lambda_mode
        self.state_dir = Path(state_dir or os.environ.get("MIXTUNE_LOCAL_STATE_DIR") or DEFAULT_STATE_DIR)
        self.settings = settings or Settings()
        self.schedule = schedule
        self.write_state_file = write_state_file
        # Overrides of the functions' sizes (mixtune.functions.resized), as CDK's functionSizes.
        self.function_sizes = function_sizes
        self.log_dir = self.state_dir / "logs"
        self.state: LocalState | None = None
        self._stack = contextlib.ExitStack()
        self._server: Any = None
        self._pool: WarmPool | None = None
        self._children_before: set[int] = set()
        self._jobs_dir: Path | None = None  # the jobs folder this cloud owns (stopped with it)

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> LocalState:
        from moto.server import ThreadedMotoServer

        self.state_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        # The interpreter logs every failed state with a dump of its whole definition; the
        # failure itself is in the execution history and the run item.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        self._children_before = {p.pid for p in _descendants(os.getpid())}
        try:
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.requested_port, verbose=False)
            self._server.start()
            _host, port = self._server.get_host_and_port()
            endpoint = f"http://127.0.0.1:{port}"
            # The Step Functions interpreter calls Lambda at http://localhost:$MOTO_PORT.
            os.environ["MOTO_PORT"] = str(port)
            self._configure_moto(endpoint)
            self._stack.enter_context(lambda_runtime(self._runner(), extra_env=self._runtime_env(endpoint)))
            self._stack.enter_context(async_s3_notifications())
            self._stack.enter_context(complete_s3_notifications())
            self._stack.enter_context(async_event_invokes())
            self._stack.enter_context(eventbridge_targets())
            self._stack.enter_context(aws_error_names())
            self._stack.enter_context(execution_status_events())
            deployer = deploy.Deployer(endpoint, REGION, self.function_sizes)
            work_settings = self._local_settings()
            resources = deployer.deploy(work_settings, {}, self.schedule)
            api = ApiProxy(
                deployer.client("lambda"),
                resources.functions["api"],
                ACCOUNT_ID,
                self.requested_api_port,
            )
            api.start()
            self._stack.callback(api.stop)
            scheduler = Scheduler(ACCOUNT_ID, REGION)
            scheduler.start()
            self._stack.callback(scheduler.stop)
            self.state = LocalState(
                pid=os.getpid(),
                endpoint=endpoint,
                api_endpoint=api.url,
                region=REGION,
                state_dir=str(self.state_dir),
                log_dir=str(self.log_dir),
                resources=resources,
            )
            if self.write_state_file:
                write_state(self.state)
        except BaseException:
            self.stop()
            raise
        return self.state

    def stop(self) -> None:
        """Stop everything this cloud started: threads, workers, the jobs they launched."""
        new_children = [p for p in _descendants(os.getpid()) if p.pid not in self._children_before]
        self._stack.close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        stop_processes([p for p in new_children if p.is_running()])
        if self._jobs_dir is not None:  # jobs whose launching worker retired are nobody's children
            LocalBackend(self._jobs_dir).stop_all()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self.write_state_file and self.state is not None:
            clear_state(self.state_dir, self.state.pid)

    def __enter__(self) -> LocalCloud:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- pieces --------------------------------------------------------------------------
    def _configure_moto(self, endpoint: str) -> None:
        # moto's backends are per process: a cloud started earlier in this process left its
        # resources there. Start empty.
        for path, body in (
            ("/moto-api/reset", b""),
            ("/moto-api/config", json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()),
        ):
            request = urllib.request.Request(f"{endpoint}{path}", data=body, method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()

    def _runner(self) -> Any:
        if self.lambda_mode == "warm":
            self._pool = WarmPool(self.log_dir)
            return self._pool
        return self.lambda_mode

    def _runtime_env(self, endpoint: str) -> dict[str, str]:
        """What the Lambda runtime provides, pointed at this cloud."""
        return {
            "AWS_ENDPOINT_URL": endpoint,
            **CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "mixtune-local",
        }

    def _local_settings(self) -> Settings:
        updates: dict[str, Any] = {"platform": "local"}
        # Jobs here are subprocesses: poll every second and give a job half an hour, unless
        # told otherwise (a run's poll interval then stretches to cover its job budget).
        for name, value in LOCAL_DEFAULTS.items():
            if name not in self.settings.model_fields_set:
                updates[name] = value
        if not self.settings.local_workdir:
            jobs = (self.state_dir / "jobs").resolve()
            # This cloud starts empty, so the jobs of an earlier one (their outputs went to its
            # S3) must go too: a run with the same name would otherwise find them "submitted".
            LocalBackend(jobs).clear()
            updates["local_workdir"] = str(jobs)
            self._jobs_dir = jobs
        return self.settings.model_copy(update=updates)

    # --- conveniences ----------------------------------------------------------------------
    @property
    def resources(self) -> Resources:
        assert self.state is not None, "start() first"
        return self.state.resources

    @property
    def endpoint(self) -> str:
        assert self.state is not None, "start() first"
        return self.state.endpoint

    @property
    def api_endpoint(self) -> str:
        assert self.state is not None, "start() first"
        return self.state.api_endpoint

    def client(self, service: str) -> Any:
        return local_client(service, self.endpoint)
