"""``mixtune-evaluate``: score a model (base, or base + LoRA adapter) and write ``eval.json``.

(a) the domain eval split: classification-like answers by greedy generation + label
normalisation (macro/micro F1, accuracy), free-form answers by token F1 and exact match;
(b) MMLU by the lm-evaluation-harness convention (letter log-likelihood, 0-shot default);
(c) optionally the assistant-token loss on a held-out general set.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from mixtune import layout, storage
from mixtune.evaluation import (
    DomainScores,
    EvalResult,
    GeneralLoss,
    classification_scores,
    freeform_scores,
    looks_like_classification,
    match_label,
)
from mixtune.evaluation.mmlu import load_mmlu, score, split_shots
from mixtune.training_config import EvalConfig
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


def score_domain(model: Any, tokenizer: Any, config: EvalConfig) -> DomainScores:
    from mixtune_training.scoring import generate_answers

    assert config.domain_data is not None
    records = load_records(config.domain_data, limit=config.domain_limit)
    golds = [record.final_answer.strip() for record in records]
    task = config.domain_task
    if task == "auto":
        task = "classification" if (config.labels or looks_like_classification(golds)) else "freeform"
    predictions = generate_answers(model, tokenizer, records, config.max_new_tokens, config.batch_size)
    if task == "classification":
        labels = config.labels or sorted(set(golds))
        gold_labels = [match_label(g, labels) for g in golds]
        predicted = [match_label(p, labels) for p in predictions]
        scores = classification_scores(gold_labels, predicted, labels)
        return DomainScores(task="classification", n=len(records), classification=scores)
    return DomainScores(task="freeform", n=len(records), freeform=freeform_scores(golds, predictions))


def score_mmlu(model: Any, tokenizer: Any, config: EvalConfig) -> Any:
    from mixtune_training.scoring import answer_mmlu

    try:
        questions = load_mmlu(config.mmlu_source, "test", config.mmlu_subjects, config.mmlu_limit_per_subject)
        dev = load_mmlu(config.mmlu_source, "dev", config.mmlu_subjects) if config.mmlu_shots else []
    except (FileNotFoundError, ValueError) as exc:
        raise TrainingError(str(exc)) from None
    scored, shots = split_shots(questions, dev, config.mmlu_shots)
    if not scored:
        raise TrainingError("no MMLU questions to score with this subset")
    chosen = answer_mmlu(model, tokenizer, scored, shots, config.batch_size, config.max_length)
    return score(((q.subject, c == q.answer) for q, c in zip(scored, chosen, strict=True)), config.mmlu_shots)


def evaluate(config: EvalConfig) -> EvalResult:
    from mixtune_training.models import load_for_inference
    from mixtune_training.scoring import assistant_loss

    quiet_progress()
    started = time.monotonic()
    model, tokenizer = load_for_inference(config.base_model, adapter=config.adapter)
    domain = score_domain(model, tokenizer, config) if config.domain_data else None
    mmlu = score_mmlu(model, tokenizer, config) if config.mmlu else None
    general = None
    if config.general_data:
        records = load_records(config.general_data, limit=config.general_limit)
        loss, tokens = assistant_loss(model, tokenizer, records, config.batch_size, config.max_length)
        general = GeneralLoss(n=len(records), loss=loss, tokens=tokens)
    return EvalResult(
        base_model=config.base_model,
        adapter=config.adapter,
        config=config.model_dump(mode="json", exclude={"base_model", "adapter", "output"}),
        config_hash=config.config_hash(),
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
