"""`mixtune runs list|show|start`: runs through the service's API (the local cloud's by default)."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from mixtune.cli import UsageError


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint",
        default=None,
        help="API base URL (default: $MIXTUNE_API_ENDPOINT, else the running local cloud's)",
    )
    common.add_argument("--state-dir", default=None, help="local cloud state folder (default .mixtune/local)")
    parser = subparsers.add_parser("runs", help="list and show runs through the service's API")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="recent runs, newest first")
    listing.add_argument("--dataset", default=None)
    listing.add_argument("--status", default=None)
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    listing.set_defaults(func=run_list)
    show = actions.add_parser("show", parents=[common], help="one run: status, stage, metrics, gate, lineage")
    show.add_argument("run_id")
    show.add_argument(
        "--open",
        action="store_true",
        help="fetch the run's report page through its link, write it locally and print its path",
    )
    show.add_argument("--json", action="store_true", help="print the API's JSON (the whole run record)")
    show.add_argument(
        "--out",
        default=".mixtune/reports",
        help="where --open writes <run id>/report.html (default: %(default)s)",
    )
    show.set_defaults(func=run_show)
    start = actions.add_parser(
        "start", parents=[common], help="start a run (POST /runs): a request file, or a dataset's s3:// URI"
    )
    start.add_argument(
        "request",
        metavar="FILE",
        help="a JSON file with POST /runs's body (dataset_uri, dataset, config), or an s3:// dataset URI",
    )
    start.add_argument(
        "--sweep",
        default=None,
        metavar="SHARES",
        help="train several mixes in one run and keep the best: domain shares, e.g. 100,75,50",
    )
    start.add_argument("--max-concurrency", type=int, default=None, help="sweep arms that train at once")
    start.set_defaults(func=run_start)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def api_endpoint(args: argparse.Namespace) -> str:
    if getattr(args, "endpoint", None):
        return str(args.endpoint).rstrip("/")
    if os.environ.get("MIXTUNE_API_ENDPOINT"):
        return os.environ["MIXTUNE_API_ENDPOINT"].rstrip("/")
    from mixtune.local.state import read_state

    state = read_state(getattr(args, "state_dir", None))
    if state is None:
        raise UsageError("no API endpoint: start `mixtune local up`, or pass --endpoint URL")
    return state.api_endpoint


def api_get(endpoint: str, path: str, query: dict[str, str | None] | None = None) -> tuple[int, Any]:
    params = {k: v for k, v in (query or {}).items() if v}
    url = f"{endpoint}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    return _call_api(endpoint, urllib.request.Request(url))


def _call_api(endpoint: str, request: urllib.request.Request) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body) of one API call; an error body that is not JSON becomes
    {"message": text}; an unreachable API is a usage error naming the endpoint."""
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"null")
        except ValueError:
            return exc.code, {"message": body.decode("utf-8", "replace")}
    except urllib.error.URLError as exc:
        raise UsageError(f"cannot reach the API at {endpoint}: {exc.reason}") from exc


def _runs_of(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    for key in ("runs", "items"):
        if isinstance(body, dict) and isinstance(body.get(key), list):
            return list(body[key])
    return []


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("" if value is None else str(value))


def list_runs(endpoint: str, dataset: str | None, status: str | None) -> list[dict[str, Any]]:
    """Runs newest first. The API lists by dataset or by status; with neither, every status."""
    from mixtune.runs import RunStatus

    queries = (
        [{"dataset": dataset, "status": status}]
        if dataset or status
        else [{"status": s.value} for s in RunStatus]
    )
    runs: list[dict[str, Any]] = []
    for query in queries:
        code, body = api_get(endpoint, "/runs", query)
        if code != 200:
            raise UsageError(f"GET /runs answered {code}: {(body or {}).get('message', body)}")
        runs.extend(_runs_of(body))
    return sorted(runs, key=lambda run: str(run.get("created_at", "")), reverse=True)


def run_list(args: argparse.Namespace) -> int:
    runs = list_runs(api_endpoint(args), args.dataset, args.status)
    if args.json:
        print(json.dumps({"runs": runs}, indent=2))
        return 0
    from rich.table import Table

    from mixtune.report.console import output_console

    table = Table(title=f"{len(runs)} run(s)")
    for column in ("run id", "dataset", "status", "stage", "created"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            run.get("run_id", ""),
            run.get("dataset", ""),
            run.get("status", ""),
            _fmt(run.get("stage")),
            _fmt(run.get("created_at")),
        )
    output_console().print(table)
    return 0


def run_show(args: argparse.Namespace) -> int:
    status, body = api_get(api_endpoint(args), f"/runs/{urllib.parse.quote(args.run_id, safe='')}")
    if status == 404:
        raise UsageError(f"no run {args.run_id!r}")
    if status != 200:
        raise UsageError(f"GET /runs/{args.run_id} answered {status}: {(body or {}).get('message', body)}")
    if args.open:
        print(save_report_page(body, Path(args.out)))
        return 0
    if args.json:
        print(json.dumps(body, indent=2, sort_keys=False))
        return 0
    from mixtune.report.console import output_console

    console = output_console()
    print_run(body, console)
    print_arms(body, console)
    return 0


def print_arms(run: dict[str, Any], console: Any = None) -> None:
    """A sweep's arms as a table (after the run's JSON), the choice's reasons and the cost."""
    from mixtune.sweeps.summary import ARM_COLUMNS, arm_table, cost_line, sweep_of

    sweep = sweep_of(run.get("metrics"))
    if sweep is None:
        return
    from rich import box
    from rich.table import Table

    from mixtune.report.console import output_console

    chosen = sweep.get("chosen")
    table = Table(
        title=f"sweep: {len(sweep['arms'])} arms, chosen: {chosen or 'none (no arm passed the gate)'}",
        box=box.SIMPLE,
    )
    # A terminal's table: no status (the gate column says FAILED), short headers, and of the
    # general columns the MMLU change or, when the arms were ranked on it, the held-out loss.
    left_out = ("status", "MMLU Δ pts" if sweep.get("general_score") == "general_loss" else "general loss")
    keep = [i for i, name in enumerate(ARM_COLUMNS) if name not in left_out]
    short = {
        "domain F1": "F1",
        "general loss": "loss",
        "domain Δ pts": "ΔF1",
        "MMLU Δ pts": "ΔMMLU",
        "est. $": "$",
    }
    for i in keep:
        table.add_column(short.get(ARM_COLUMNS[i], ARM_COLUMNS[i]) or "choice")
    for row in arm_table(sweep, intervals=False):
        if row[2] == "FAILED":
            row[8] = "FAILED"  # its cause is printed under the table
        table.add_row(*(row[i] for i in keep))
    console = console or output_console()
    console.print(table)
    for reason in sweep.get("reasons", []):
        console.print(f"  {reason}", highlight=False)
    for row in sweep["arms"]:
        if failure := row.get("failure"):
            console.print(
                f"  {row['arm']} failed: {failure.get('error')}: {failure.get('cause')}", highlight=False
            )
    if line := cost_line(sweep):
        console.print(f"  {line}", highlight=False)


def sweep_arms(text: str) -> list[float]:
    """``100,75,50`` -> [100.0, 75.0, 50.0]; a usage error names what is wrong."""
    try:
        shares = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(
            f"--sweep: {text!r} is not a comma-separated list of domain shares (e.g. 100,75,50)"
        ) from None
    return [int(share) if share.is_integer() else share for share in shares]


def start_request(source: str, sweep: str | None, max_concurrency: int | None) -> dict[str, Any]:
    """POST /runs's body from a request file (or a dataset URI), with the sweep options over it."""
    if source.startswith("s3://"):
        request: dict[str, Any] = {"dataset_uri": source}
    else:
        try:
            request = json.loads(Path(source).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the run request {source}: {exc}") from exc
        if not isinstance(request, dict):
            raise UsageError(f"{source}: a run request is a JSON object (dataset_uri, dataset, config)")
    if sweep is not None or max_concurrency is not None:
        config = dict(request.get("config") or {})
        given = config.get("sweep")
        arms_config: dict[str, Any] = (
            dict(given) if isinstance(given, dict) else ({"arms": given} if given is not None else {})
        )
        if sweep is not None:
            arms_config["arms"] = sweep_arms(sweep)
        if max_concurrency is not None:
            arms_config["max_concurrency"] = max_concurrency
        request["config"] = {**config, "sweep": arms_config}
    return request


def api_post(endpoint: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{endpoint}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    return _call_api(endpoint, request)


def run_start(args: argparse.Namespace) -> int:
    body = start_request(args.request, args.sweep, args.max_concurrency)
    status, reply = api_post(api_endpoint(args), "/runs", body)
    if status != 202:
        message = (reply or {}).get("message", reply) if isinstance(reply, dict) else reply
        problems = (reply or {}).get("errors") if isinstance(reply, dict) else None
        detail = "; ".join(problems) if isinstance(problems, list) else str(message)
        raise UsageError(f"POST /runs answered {status}: {detail}")
    print(json.dumps(reply, indent=2))
    return 0


def print_run(run: dict[str, Any], console: Any) -> None:
    """A run as a person reads it: status, scores with their 95 % intervals, the gate's reasons,
    what its eval sets can detect; ``--json`` gives everything else."""
    from mixtune.notifications import items_needed_text
    from mixtune.report.console import print_scores
    from mixtune.report.summary import score_rows

    console.print(
        f"run [bold]{run.get('run_id')}[/bold] ({run.get('dataset')}): [bold]{run.get('status')}[/bold]"
        + (f", stage {run['stage']}" if run.get("stage") else "")
    )
    if run.get("summary"):
        console.print(f"summary: {run['summary']}")
    rows = score_rows(run.get("metrics"), {})
    if rows:
        print_scores(console, rows)
    gate = run.get("gate") or {}
    if gate:
        console.print(f"gate: {gate.get('verdict') or ('PROMOTE' if gate.get('promote') else 'REJECT')}")
        for reason in gate.get("reasons") or []:
            console.print(f"  {reason}")
        if gate.get("items_needed"):
            console.print(f"  items that would decide: {items_needed_text(gate['items_needed'])}")
    sizing = run.get("sizing") or {}
    if sizing.get("lines"):
        console.print("eval sets, before training:")
        for line in sizing["lines"]:
            console.print(f"  {line}")
    failure = run.get("failure") or {}
    if failure:
        console.print(f"failed: {failure.get('error')}: {failure.get('cause')}")
    report = (run.get("report") or {}).get("url")
    if report:
        console.print(f"report: {report}")


def save_report_page(run: dict[str, Any], out: Path) -> Path:
    """Download the run's report page through the presigned link ``GET /runs/{id}`` gave."""
    report = run.get("report") or {}
    if not report.get("url"):
        why = "it is written when the run ends" if not report else "its link could not be signed"
        raise UsageError(f"run {run.get('run_id')} ({run.get('status')}) has no report link: {why}")
    try:
        with urllib.request.urlopen(report["url"], timeout=60) as response:
            page = response.read()
    except urllib.error.URLError as exc:
        raise UsageError(f"cannot fetch the report of run {run.get('run_id')}: {exc}") from exc
    from mixtune import layout

    path = out / str(run["run_id"]) / layout.REPORT_HTML
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page)
    return path.resolve()
