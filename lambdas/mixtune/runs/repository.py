"""The runs table: the only code in the service that reads or writes it.

One table, four kinds of item told apart by the partition key ``pk``:
``run#<id>`` (a :class:`Run`), ``baseline#<base model>#<baseline key>`` (a cached
:class:`Baseline`), ``promoted#<base model>`` (the adapter the gate last passed) and
``arm#<run id>#<arm>`` (an arm of a sweep, :class:`mixtune.sweeps.model.ArmRecord`).
Two sparse GSIs index runs only: ``by_dataset`` (dataset, created_at) and ``by_status``
(status, created_at). :func:`table_definition` is the schema the CDK stack, the local
cloud and the tests all create.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mixtune.errors import IllegalTransition, RunAlreadyExists, RunNotFound
from mixtune.runs.model import (
    Baseline,
    Failure,
    Lineage,
    Promoted,
    Run,
    RunStatus,
    now_iso,
    sources_of,
)
from mixtune.sweeps.model import ARM_FIELDS, ArmRecord

PARTITION_KEY = "pk"
GSI_BY_DATASET = "by_dataset"
GSI_BY_STATUS = "by_status"
_RUN_FIELDS = ("stage", "summary", "sizing", "metrics", "gate", "failure")


def table_definition(table_name: str) -> dict[str, Any]:
    """`create_table` arguments of the runs table (on-demand billing)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": "dataset", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, hash_key in ((GSI_BY_DATASET, "dataset"), (GSI_BY_STATUS, "status"))
        ],
    }


def idempotency_table_definition(table_name: str) -> dict[str, Any]:
    """`create_table` arguments of the Powertools idempotency table (TTL attribute `expiration`)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }


def _to_dynamo(value: Any) -> Any:
    """JSON-ish data -> what the DynamoDB serializer takes (floats become Decimals)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


class RunsRepository:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.table_name = table_name
        self._client = client
        self._ser = TypeSerializer()
        self._de = TypeDeserializer()

    @classmethod
    def from_settings(cls) -> RunsRepository:
        from mixtune.settings import get_settings

        return cls(get_settings().runs_table)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    # ---- (de)serialisation -------------------------------------------------------------
    def _item(self, data: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(v) for k, v in _to_dynamo(data).items()}

    def _plain(self, item: dict[str, Any]) -> dict[str, Any]:
        return _from_dynamo({k: self._de.deserialize(v) for k, v in item.items()})

    @staticmethod
    def _run_key(run_id: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": f"run#{run_id}"}}

    # ---- runs -------------------------------------------------------------------------
    def create(self, run: Run) -> Run:
        """Write a new run; refuses (RunAlreadyExists) when the id is taken."""
        data = {PARTITION_KEY: f"run#{run.run_id}", "kind": "run", **run.model_dump(mode="json")}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=self._item(data),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": PARTITION_KEY},
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise RunAlreadyExists(f"run {run.run_id} exists already") from exc
        return run

    def get(self, run_id: str) -> Run:
        found = self.find(run_id)
        if found is None:
            raise RunNotFound(f"no run {run_id!r}")
        return found

    def find(self, run_id: str) -> Run | None:
        reply = self.client.get_item(
            TableName=self.table_name, Key=self._run_key(run_id), ConsistentRead=True
        )
        return Run.model_validate(self._plain(reply["Item"])) if "Item" in reply else None

    def transition(
        self,
        run_id: str,
        status: RunStatus,
        *,
        lineage: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Run:
        """Move a run to ``status`` (refusing illegal moves) and set ``fields`` in the same write.

        ``lineage`` entries are merged into the stored lineage; ``fields`` may be
        stage, summary, sizing, metrics, gate or failure.
        """
        allowed = sorted(sources_of(status))
        if not allowed:
            raise IllegalTransition(f"no status leads to {status}")
        values = {f":from{i}": s.value for i, s in enumerate(allowed)}
        condition = f"#status IN ({', '.join(values)})"
        try:
            return self._update(run_id, {"status": status.value}, lineage, fields, condition, values)
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            current = self.find(run_id)
            if current is None:
                raise RunNotFound(f"no run {run_id!r}") from exc
            raise IllegalTransition(f"run {run_id}: {current.status} -> {status} is not allowed") from exc

    def update(self, run_id: str, *, lineage: dict[str, Any] | None = None, **fields: Any) -> Run:
        """Set fields (and merge lineage) without changing the status."""
        try:
            return self._update(run_id, {}, lineage, fields, "attribute_exists(#pk)", {})
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise RunNotFound(f"no run {run_id!r}") from exc

    def _update(
        self,
        run_id: str,
        top: dict[str, Any],
        lineage: dict[str, Any] | None,
        fields: dict[str, Any],
        condition: str,
        condition_values: dict[str, Any],
    ) -> Run:
        unknown = set(fields) - set(_RUN_FIELDS)
        if unknown:
            raise TypeError(f"not updatable run fields: {sorted(unknown)}")
        if "failure" in fields and isinstance(fields["failure"], Failure):
            fields["failure"] = fields["failure"].model_dump()
        names = {"#pk": PARTITION_KEY, "#updated_at": "updated_at"}
        if "#status" in condition:
            names["#status"] = "status"
        values: dict[str, Any] = {":updated_at": now_iso(), **condition_values}
        sets = ["#updated_at = :updated_at"]
        for i, (name, value) in enumerate({**top, **fields}.items()):
            names.setdefault(f"#{name}", name)
            values[f":v{i}"] = value
            sets.append(f"#{name} = :v{i}")
        if lineage:
            Lineage.model_validate(lineage)  # refuse unknown lineage keys early
            names["#lineage"] = "lineage"
            for i, (name, value) in enumerate(lineage.items()):
                names[f"#l{i}"] = name
                values[f":l{i}"] = value
                sets.append(f"#lineage.#l{i} = :l{i}")
        reply = self.client.update_item(
            TableName=self.table_name,
            Key=self._run_key(run_id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=condition if "#pk" in condition else f"attribute_exists(#pk) AND {condition}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=self._item(values),
            ReturnValues="ALL_NEW",
        )
        return Run.model_validate(self._plain(reply["Attributes"]))

    def claim_notification(self, run_id: str, status: RunStatus) -> bool:
        """Mark the run's ``status`` as announced, once: True for the one caller that marks it
        (a second pass, a retry, a concurrent trigger gets False and publishes nothing)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._run_key(run_id),
                UpdateExpression="SET #notified = :status",
                ConditionExpression="attribute_exists(#pk) AND (attribute_not_exists(#notified) OR #notified <> :status)",
                ExpressionAttributeNames={"#pk": PARTITION_KEY, "#notified": "notified"},
                ExpressionAttributeValues={":status": {"S": status.value}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_notification(self, run_id: str, status: RunStatus) -> None:
        """Undo :meth:`claim_notification` after the publish failed, so a retry announces."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._run_key(run_id),
                UpdateExpression="REMOVE #notified",
                ConditionExpression="#notified = :status",
                ExpressionAttributeNames={"#notified": "notified"},
                ExpressionAttributeValues={":status": {"S": status.value}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return

    def list_by_dataset(self, dataset: str, status: RunStatus | None = None, limit: int = 50) -> list[Run]:
        """Newest first."""
        runs = self._query(GSI_BY_DATASET, "dataset", dataset, limit if status is None else None)
        if status is not None:
            runs = [run for run in runs if run.status == status][:limit]
        return runs

    def list_by_status(self, status: RunStatus, limit: int = 50) -> list[Run]:
        """Newest first."""
        return self._query(GSI_BY_STATUS, "status", status.value, limit)

    def _query(self, index: str, attribute: str, value: str, limit: int | None) -> list[Run]:
        runs: list[Run] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#a = :v",
            "ExpressionAttributeNames": {"#a": attribute},
            "ExpressionAttributeValues": {":v": {"S": value}},
            "ScanIndexForward": False,
        }
        while True:
            reply = self.client.query(**kwargs)
            items = (self._plain(item) for item in reply.get("Items", []))
            runs.extend(Run.model_validate(item) for item in items if item.get("kind") == "run")
            if "LastEvaluatedKey" not in reply or (limit is not None and len(runs) >= limit):
                return runs if limit is None else runs[:limit]
            kwargs["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    # ---- baselines and the promoted adapter ----------------------------------------------
    @staticmethod
    def _baseline_pk(base_model: str, key: str) -> str:
        return f"baseline#{base_model}#{key}"

    def get_baseline(self, base_model: str, key: str) -> Baseline | None:
        reply = self.client.get_item(
            TableName=self.table_name,
            Key={PARTITION_KEY: {"S": self._baseline_pk(base_model, key)}},
            ConsistentRead=True,
        )
        return Baseline.model_validate(self._plain(reply["Item"])) if "Item" in reply else None

    def put_baseline(self, baseline: Baseline) -> Baseline:
        """Cache a baseline; the first one stored for a (model, baseline key) pair wins."""
        pk = self._baseline_pk(baseline.base_model, baseline.key)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=self._item({PARTITION_KEY: pk, "kind": "baseline", **baseline.model_dump()}),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": PARTITION_KEY},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            existing = self.get_baseline(baseline.base_model, baseline.key)
            return existing or baseline
        return baseline

    def drop_baseline(self, baseline: Baseline) -> bool:
        """Remove a cached baseline found stale, only if it is still that one (same eval.json):
        the next run scores the base model again. False when it was gone or replaced."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": self._baseline_pk(baseline.base_model, baseline.key)}},
                ConditionExpression="eval_uri = :uri",
                ExpressionAttributeValues={":uri": {"S": baseline.eval_uri}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def set_promoted(self, promoted: Promoted) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item=self._item(
                {
                    PARTITION_KEY: f"promoted#{promoted.base_model}",
                    "kind": "promoted",
                    **promoted.model_dump(),
                }
            ),
        )

    def get_promoted(self, base_model: str) -> Promoted | None:
        reply = self.client.get_item(
            TableName=self.table_name,
            Key={PARTITION_KEY: {"S": f"promoted#{base_model}"}},
            ConsistentRead=True,
        )
        return Promoted.model_validate(self._plain(reply["Item"])) if "Item" in reply else None

    # ---- sweeps: a job of an arm, and the arms' own items --------------------------------
    def add_job(self, run_id: str, key: str, job_id: str, stage: str) -> Run:
        """Record one more job of a running run (``lineage.job_ids[key]``) in one write that
        touches no other job: the arms of a sweep launch theirs concurrently. Refuses
        (IllegalTransition) when the run is no longer RUNNING."""
        try:
            reply = self.client.update_item(
                TableName=self.table_name,
                Key=self._run_key(run_id),
                UpdateExpression="SET #lineage.#job_ids.#key = :job, #stage = :stage, #updated_at = :now",
                ConditionExpression="attribute_exists(#pk) AND #status = :running",
                ExpressionAttributeNames={
                    "#pk": PARTITION_KEY,
                    "#lineage": "lineage",
                    "#job_ids": "job_ids",
                    "#key": key,
                    "#stage": "stage",
                    "#updated_at": "updated_at",
                    "#status": "status",
                },
                ExpressionAttributeValues=self._item(
                    {":job": job_id, ":stage": stage, ":now": now_iso(), ":running": RunStatus.RUNNING.value}
                ),
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            current = self.find(run_id)
            raise IllegalTransition(
                f"run {run_id} is {current.status if current else 'gone'}: no job may start"
            ) from exc
        return Run.model_validate(self._plain(reply["Attributes"]))

    @staticmethod
    def _arm_key(run_id: str, arm: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": f"arm#{run_id}#{arm}"}}

    def put_arm(self, run_id: str, arm: str, **fields: Any) -> ArmRecord:
        """Create or update an arm's item, setting ``fields`` (:data:`ARM_FIELDS`)."""
        unknown = set(fields) - set(ARM_FIELDS)
        if unknown:
            raise TypeError(f"not arm fields: {sorted(unknown)}")
        values = {"kind": "arm", "run_id": run_id, "arm": arm, "updated_at": now_iso(), **fields}
        values = {k: v for k, v in values.items() if v is not None}
        names = {f"#f{i}": name for i, name in enumerate(values)}
        reply = self.client.update_item(
            TableName=self.table_name,
            Key=self._arm_key(run_id, arm),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=self._item({f":f{i}": v for i, v in enumerate(values.values())}),
            ReturnValues="ALL_NEW",
        )
        return ArmRecord.model_validate(self._plain(reply["Attributes"]))

    def get_arms(self, run_id: str, arms: list[str]) -> list[ArmRecord]:
        """The arms' items that exist, in the order of ``arms``."""
        found: dict[str, ArmRecord] = {}
        keys = [self._arm_key(run_id, arm) for arm in arms]
        while keys:
            reply = self.client.batch_get_item(
                RequestItems={self.table_name: {"Keys": keys[:100], "ConsistentRead": True}}
            )
            for item in reply.get("Responses", {}).get(self.table_name, []):
                record = ArmRecord.model_validate(self._plain(item))
                found[record.arm] = record
            unprocessed = reply.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            keys = unprocessed + keys[100:]
        return [found[arm] for arm in arms if arm in found]
