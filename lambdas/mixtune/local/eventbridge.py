"""EventBridge for the local cloud: what moto leaves out.

moto matches events to rules but delivers only to SQS, logs and event buses, and it never
fires schedules. Here rule targets that are Lambda functions or state machines are
delivered (asynchronously, as EventBridge does), schedule-only rules stop matching
ordinary events, and :class:`Scheduler` fires ``rate(...)`` and ``cron(...)`` rules.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger("mixtune.local")

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNITS[match.group(2).rstrip("s")]


def _field_values(field: str, low: int, high: int) -> set[int] | None:
    """Values a cron field allows; None means any (``*`` or ``?``)."""
    if field in ("*", "?"):
        return None
    values: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            start_text, end_text = part.split("-", 1)
            start, end = int(start_text), int(end_text)
        else:
            start = int(part)
            end = high if step > 1 else start
        values.update(range(start, end + 1, step))
    return values


_DAY_NAMES = {name: index + 1 for index, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


def cron_matches(expression: str, moment: datetime) -> bool:
    """Whether an EventBridge ``cron(min hour dom month dow year)`` fires at ``moment``'s minute.

    Supports ``*``, ``?``, numbers, lists, ranges, steps and day names; not ``L``, ``W``, ``#``.
    """
    match = _CRON.match(expression.strip())
    if not match:
        raise ValueError(f"not a cron expression: {expression!r}")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise ValueError(f"cron needs 6 fields (min hour day month weekday year): {expression!r}")
    minute, hour, dom, month, dow, year = fields
    for name, number in _DAY_NAMES.items():
        dow = dow.upper().replace(name, str(number))
    aws_weekday = (moment.isoweekday() % 7) + 1  # EventBridge: 1 = Sunday
    checks = (
        (minute, 0, 59, moment.minute),
        (hour, 0, 23, moment.hour),
        (dom, 1, 31, moment.day),
        (month, 1, 12, moment.month),
        (dow, 1, 7, aws_weekday),
        (year, 1970, 2199, moment.year),
    )
    for field, low, high, value in checks:
        allowed = _field_values(field, low, high)
        if allowed is not None and value not in allowed:
            return False
    return True


def scheduled_event(rule_arn: str, region: str, account: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


# Delivers one event to one target ARN (a Lambda function or a state machine).
Deliver = Callable[[str, dict[str, Any], dict[str, Any]], None]


def deliver_to_target(target: dict[str, Any], event: dict[str, Any], account: str, region: str) -> None:
    """Invoke a Lambda target (asynchronously, with Lambda's retries and on-failure destination)
    or start a state machine target, as EventBridge would."""
    from moto.awslambda.utils import get_backend as lambda_backend

    from mixtune.local.async_invoke import invoke_async

    arn = target["Arn"]
    payload = json.loads(target["Input"]) if target.get("Input") else event
    service = arn.split(":")[2]
    if service == "lambda":
        invoke_async(lambda_backend(account, region).get_function(arn), payload)
    elif service == "states":
        from moto.stepfunctions.responses import get_backend as sfn_backend

        sfn_backend(account, region).start_execution(arn, execution_input=json.dumps(payload))
    else:
        raise ValueError(f"unsupported target {arn}")


def _in_background(work: Callable[[], None], what: str) -> None:
    def run() -> None:
        try:
            work()
        except Exception:  # an async delivery: log it, as the service would, and go on
            log.exception("delivery failed: %s", what)

    threading.Thread(target=run, name=f"deliver {what}", daemon=True).start()


@contextmanager
def eventbridge_targets() -> Iterator[None]:
    """Patch moto so rules deliver to Lambda and Step Functions targets."""
    from moto.events.models import Rule

    original = Rule.send_to_targets
    lock = threading.Lock()

    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        if self.scheduled_expression and not self.event_pattern.get_pattern():
            return  # a schedule rule: only the scheduler fires it
        if not self.event_pattern.matches_event(original_event):
            return
        ours = [t for t in self.targets if t["Arn"].split(":")[2] in ("lambda", "states")]
        for target in ours:
            _in_background(
                lambda target=target: deliver_to_target(
                    target, dict(original_event), self.account_id, self.region_name
                ),
                target["Arn"],
            )
        rest = [t for t in self.targets if t not in ours]
        if rest:
            with lock:
                saved, self.targets = self.targets, rest
                try:
                    original(self, original_event, transform_input)
                finally:
                    self.targets = saved

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
    try:
        yield
    finally:
        Rule.send_to_targets = original  # type: ignore[method-assign]


class Scheduler:
    """Fires enabled schedule rules of the default event bus at their times."""

    def __init__(self, account: str, region: str, tick_s: float = 1.0) -> None:
        self.account, self.region, self.tick_s = account, region, tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_fired: dict[str, datetime] = {}
        self._started = datetime.now(UTC)

    def _rules(self) -> list[Any]:
        from moto.events.models import events_backends

        bus = events_backends[self.account][self.region].describe_event_bus("default")
        return [r for r in bus.rules.values() if r.scheduled_expression and r.state == "ENABLED"]

    def fire(self, rule: Any) -> None:
        event = scheduled_event(rule.arn, self.region, self.account)
        for target in rule.targets:
            _in_background(
                lambda target=target: deliver_to_target(target, event, self.account, self.region),
                f"{rule.name} -> {target['Arn']}",
            )

    def due(self, rule: Any, now: datetime) -> bool:
        expression = rule.scheduled_expression
        last = self._last_fired.get(rule.name, self._started)
        seconds = rate_seconds(expression)
        if seconds is not None:
            return now - last >= timedelta(seconds=seconds)
        minute = now.replace(second=0, microsecond=0)
        return minute > last.replace(second=0, microsecond=0) and cron_matches(expression, minute)

    def tick(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        fired = []
        for rule in self._rules():
            try:
                if self.due(rule, now):
                    self._last_fired[rule.name] = now
                    self.fire(rule)
                    fired.append(rule.name)
            except ValueError:
                log.warning("rule %s: unsupported schedule %s", rule.name, rule.scheduled_expression)
                self._last_fired[rule.name] = now
        return fired

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.tick_s):
                self.tick()

        self._thread = threading.Thread(target=loop, name="eventbridge-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
