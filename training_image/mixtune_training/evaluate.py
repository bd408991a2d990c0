"""``mixtune-evaluate``: score a model (base, or base + LoRA adapter) and write ``eval.json``.

(a) the domain eval split: classification-like answers by greedy generation + label
normalisation (macro/micro F1, accuracy), free-form answers by token F1 and exact match;
(b) MMLU by the lm-evaluation-harness convention (letter log-likelihood, 0-shot default);
(c) optionally the assistant-token loss on a held-out general set.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from mixtune import layout, storage
from mixtune.evaluation import (
    DomainItems,
    DomainScores,
    EvalResult,
    GeneralLoss,
    LossItems,
    UnknownGoldError,
    classification_scores,
    detect_task,
    freeform_scores,
    gold_labels,
    match_label,
)
from mixtune.evaluation.comparability import library_versions
from mixtune.evaluation.metrics import label_codes, per_item_freeform
from mixtune.evaluation.mmlu import MmluQuestion, load_mmlu, question_id, score, split_shots
from mixtune.evaluation.stats import ratio_standard_error
from mixtune.records import ConversationRecord
from mixtune.training_config import FREEFORM_MAX_NEW_TOKENS, EvalConfig
from mixtune_training.common import (
    TrainingError,
    add_config_flags,
    config_from_args,
    load_records,
    quiet_progress,
    run_main,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixtune-evaluate", description=__doc__.splitlines()[0])
    add_config_flags(parser, EvalConfig)
    return parser


class Answer(Protocol):
    text: str
    finished: bool  # ended on its own before max_new_tokens


class Scorer(Protocol):
    """What scoring asks of the model: everything else (data, ids, labels, metrics, intervals,
    hashes) is the same code whatever the model. :class:`ModelScorer` is the real one."""

    def max_new_tokens_for(self, labels: Sequence[str]) -> int: ...

    def answers(
        self, records: Sequence[ConversationRecord], max_new_tokens: int, batch_size: int
    ) -> Sequence[Answer]: ...

    def mmlu_choices(
        self,
        questions: Sequence[MmluQuestion],
        shots: dict[str, list[MmluQuestion]],
        batch_size: int,
        max_length: int,
    ) -> list[int]: ...

    def losses(
        self, records: Sequence[ConversationRecord], batch_size: int, max_length: int
    ) -> list[tuple[float, int] | None]: ...

    def runtime(self) -> dict[str, str]: ...


class ModelScorer:
    """A causal LM (base, or base + merged LoRA adapter) and its tokenizer."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer

    @classmethod
    def load(cls, config: EvalConfig) -> ModelScorer:
        quiet_progress()
        return cls(*load_scoring_model(config))

    def max_new_tokens_for(self, labels: Sequence[str]) -> int:
        return classification_max_new_tokens(self.tokenizer, list(labels))

    def answers(
        self, records: Sequence[ConversationRecord], max_new_tokens: int, batch_size: int
    ) -> Sequence[Answer]:
        from mixtune_training.scoring import generate_answers

        return generate_answers(self.model, self.tokenizer, records, max_new_tokens, batch_size)

    def mmlu_choices(
        self,
        questions: Sequence[MmluQuestion],
        shots: dict[str, list[MmluQuestion]],
        batch_size: int,
        max_length: int,
    ) -> list[int]:
        from mixtune_training.scoring import answer_mmlu

        return answer_mmlu(self.model, self.tokenizer, questions, shots, batch_size, max_length)

    def losses(
        self, records: Sequence[ConversationRecord], batch_size: int, max_length: int
    ) -> list[tuple[float, int] | None]:
        from mixtune_training.scoring import record_losses

        return record_losses(self.model, self.tokenizer, records, batch_size, max_length)

    def runtime(self) -> dict[str, str]:
        """dtype, device and library versions: results from another runtime are not compared."""
        import torch

        parameter = next(self.model.parameters())
        device = parameter.device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        return {"dtype": str(parameter.dtype).removeprefix("torch."), "device": name, **library_versions()}


def item_id(record: ConversationRecord) -> str:
    """A stable id for an eval record that carries none of its text: a hash of its JSON line."""
    return hashlib.sha256(record.to_json_line().encode()).hexdigest()[:16]


def prepared_labels(domain_data: str | None) -> list[str] | None:
    """The label column's values when ``domain_data`` is the eval split that ``mixtune prepare``
    wrote from a classification dataset: its report.json beside it, naming this very file by
    hash. A small eval split need not show every label, or any label twice (56 rows of
    Banking77's 77 intents), for the task to be known."""
    if not domain_data or not domain_data.endswith(layout.EVAL_SPLIT):
        return None
    folder = domain_data[: -len(layout.EVAL_SPLIT)].rstrip("/") or "."
    report_uri = layout.prepare_report(folder)
    if not storage.exists(report_uri):
        return None
    try:
        report = json.loads(storage.read_bytes(report_uri))
    except ValueError:
        return None
    labels = report.get("labels") if isinstance(report, dict) else None
    expected = (report.get("output_sha256") or {}).get(layout.EVAL_SPLIT) if labels else None
    if not expected or storage.sha256_of(domain_data) != expected:
        return None
    return [str(label) for label in labels]


def decide_task(golds: list[str], config: EvalConfig) -> tuple[str, str, list[str]]:
    """(task, the rule that decided it, the label set of a classification task)."""
    prepared = None if config.labels else prepared_labels(config.domain_data)
    # Gold answers outside a given --labels are an error; outside the prepared label set they
    # can only be a repair prepare made, so they join it.
    labels = sorted(set(config.labels or ([*prepared, *golds] if prepared else golds)))
    if config.domain_task != "auto":
        return config.domain_task, f"{config.domain_task}: set by domain_task", labels
    if config.labels:
        return "classification", f"classification: {len(config.labels)} labels given (labels)", labels
    if prepared:
        rule = (
            f"classification: the label column of the prepared dataset ({len(set(prepared))} labels, "
            f"its {layout.PREPARE_REPORT} beside the eval split)"
        )
        return "classification", rule, labels
    decision = detect_task(golds)
    return decision.task, decision.rule, labels


def classification_max_new_tokens(tokenizer: Any, labels: list[str]) -> int:
    """Enough new tokens for the longest label and the end-of-turn marker, with this tokenizer."""
    from mixtune_training.scoring import answer_token_count

    return max(answer_token_count(tokenizer, label) for label in labels)


def score_domain(scorer: Scorer, config: EvalConfig) -> DomainScores:
    assert config.domain_data is not None
    records = load_records(config.domain_data, limit=config.domain_limit)
    golds = [record.final_answer.strip() for record in records]
    ids = [item_id(record) for record in records]
    task, rule, labels = decide_task(golds, config)
    gold_mapped: list[str] = []
    if task == "classification":
        try:
            gold_mapped = gold_labels(golds, labels)
        except UnknownGoldError as exc:
            raise TrainingError(str(exc)) from None
        max_new_tokens = config.max_new_tokens or scorer.max_new_tokens_for(labels)
    else:
        max_new_tokens = config.max_new_tokens or FREEFORM_MAX_NEW_TOKENS
    print(f"domain: {len(records)} items, {rule}; max_new_tokens {max_new_tokens}", flush=True)
    generations = scorer.answers(records, max_new_tokens, config.batch_size)
    predictions = [g.text for g in generations]
    finished = [g.finished for g in generations]
    common = {
        "n": len(records),
        "task_rule": rule,
        "max_new_tokens": max_new_tokens,
        "truncated": finished.count(False),
    }
    if task == "classification":
        predicted = [match_label(p, labels) for p in predictions]
        label_set = sorted(set(labels))
        if not config.labels:
            # Answers may name any label of the dataset, but macro-F1 averages over the labels
            # the split's answers or predictions hold: an intent the split never shows and no
            # answer names is not a zero (the convention of scikit-learn's f1_score).
            label_set = sorted(set(gold_mapped) | (set(predicted) & set(label_set)))
        scores = classification_scores(gold_mapped, predicted, label_set)
        items = DomainItems(
            ids=ids,
            labels=label_set,
            gold=label_codes(gold_mapped, label_set),
            predicted=label_codes(predicted, label_set),
            finished=finished,
        )
        return DomainScores(task="classification", classification=scores, items=items, **common)
    f1s, matches = per_item_freeform(golds, predictions)
    items = DomainItems(ids=ids, token_f1=f1s, exact_match=matches, finished=finished)
    return DomainScores(task="freeform", freeform=freeform_scores(golds, predictions), items=items, **common)


def score_mmlu(scorer: Scorer, config: EvalConfig) -> Any:
    try:
        questions = load_mmlu(config.mmlu_source, "test", config.mmlu_subjects, config.mmlu_limit_per_subject)
        dev = load_mmlu(config.mmlu_source, "dev", config.mmlu_subjects) if config.mmlu_shots else []
    except (FileNotFoundError, ValueError) as exc:
        raise TrainingError(str(exc)) from None
    scored, shots = split_shots(questions, dev, config.mmlu_shots)
    if not scored:
        raise TrainingError("no MMLU questions to score with this subset")
    chosen = scorer.mmlu_choices(scored, shots, config.batch_size, config.max_length)
    return score(
        ((q.subject, c == q.answer) for q, c in zip(scored, chosen, strict=True)),
        config.mmlu_shots,
        ids=[question_id(q) for q in scored],
    )


def score_general(scorer: Scorer, config: EvalConfig) -> GeneralLoss:
    assert config.general_data is not None
    records = load_records(config.general_data, limit=config.general_limit)
    per_record = scorer.losses(records, config.batch_size, config.max_length)
    kept = [(item_id(rec), r) for rec, r in zip(records, per_record, strict=True) if r is not None]
    sums = [r[0] for _, r in kept]
    tokens = [r[1] for _, r in kept]
    total = sum(tokens)
    return GeneralLoss(
        n=len(kept),
        loss=sum(sums) / total if total else float("nan"),
        tokens=total,
        se=ratio_standard_error(sums, tokens),
        items=LossItems(ids=[i for i, _ in kept], loss_sums=sums, tokens=tokens),
    )


def load_scoring_model(config: EvalConfig) -> tuple[Any, Any]:
    """The model in eval mode; a LoRA adapter is merged into the weights (one matmul per layer
    instead of three; the same function)."""
    from mixtune_training.models import load_for_inference

    model, tokenizer = load_for_inference(config.base_model, adapter=config.adapter)
    if config.adapter is not None and hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
        model.eval()
    return model, tokenizer


def data_hashes(config: EvalConfig) -> dict[str, str]:
    """sha256 of each eval data file as read (the whole file; the limits are in the config)."""
    files = {"domain": config.domain_data, "general": config.general_data}
    return {name: storage.sha256_of(uri) for name, uri in files.items() if uri}


def evaluate(config: EvalConfig, scorer: Scorer | None = None) -> EvalResult:
    """Score the model of ``config`` (or ``scorer``: the model side only, e.g. a test's stand-in)."""
    started = time.monotonic()
    scorer = scorer or ModelScorer.load(config)
    domain = score_domain(scorer, config) if config.domain_data else None
    mmlu = score_mmlu(scorer, config) if config.mmlu else None
    general = score_general(scorer, config) if config.general_data else None
    return EvalResult(
        base_model=config.base_model,
        adapter=config.adapter,
        config=config.model_dump(mode="json", exclude={"base_model", "adapter", "output"}),
        config_hash=config.config_hash(),
        data_sha256=data_hashes(config),
        runtime=scorer.runtime(),
        domain=domain,
        mmlu=mmlu,
        general=general,
        wall_time_s=time.monotonic() - started,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def eval_json_uri(output: str) -> str:
    return output if output.endswith(".json") else layout.eval_result(output)


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        config = config_from_args(EvalConfig, build_parser().parse_args(argv))
        if config.output is None:
            raise TrainingError("no --output given (a folder or s3:// prefix for eval.json)")
        result = evaluate(config)
        storage.write_bytes(eval_json_uri(config.output), result.to_json())
        print(f"{result.summary()} -> {eval_json_uri(config.output)}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
