"""Model-side scoring on tiny tokenizers of real chat formats and a scripted model whose every
next token is fixed in advance, so what the scorer does with an answer is known exactly."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from mixtune.evaluation import EvalResult
from mixtune.evaluation.mmlu import MmluQuestion, build_prompt
from mixtune.records import ConversationRecord
from mixtune.sample_data import write_records
from mixtune_training import evaluate, generate_rehearsal
from mixtune_training.chat import render_prompt
from mixtune_training.common import TrainingError
from mixtune_training.scoring import (
    answer_mmlu,
    answer_token_count,
    by_length,
    encode_pair,
    generate_answers,
    run_batches,
    stop_token_ids,
    token_batches,
)
from mixtune_training.tiny import tiny_config, train_tokenizer

STYLES = ("gemma", "phi3", "llama3", "chatml")
END_OF_TURN = {"gemma": "<end_of_turn>", "phi3": "<|end|>", "llama3": "<|eot_id|>", "chatml": "<|im_end|>"}
QUESTION = ConversationRecord.from_turns([("user", "I lost my card"), ("assistant", "card_lost")])
# A long label (one word, 12 tokens) whose tokens are all distinct, as a scripted chain needs:
# pieces added to the tiny tokenizers, each one token.
LABEL_PIECES = [f"q{i:02d}" for i in range(12)]
LONG_LABEL = "".join(LABEL_PIECES)


def tiny_tokenizer(style: str) -> Any:
    tokenizer = train_tokenizer(style)
    tokenizer.add_tokens(LABEL_PIECES)
    return tokenizer


@pytest.fixture(scope="module", params=STYLES)
def tokenizer(request: pytest.FixtureRequest) -> Any:
    return tiny_tokenizer(request.param)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def scripted_model(tokenizer: Any, chain: list[int], max_positions: int = 512) -> Any:
    """A Llama whose next token depends only on the current one: ``chain[i]`` -> ``chain[i + 1]``.

    Attention and MLP outputs are zeroed, so each position's hidden state is its own token's
    embedding, and the output head maps each chain token's embedding onto its successor.
    """
    import torch
    from transformers import LlamaForCausalLM

    if len(set(chain)) != len(chain):
        raise ValueError("a scripted chain must not repeat a token")
    config = tiny_config(tokenizer, num_hidden_layers=1, intermediate_size=64, max_positions=max_positions)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.lm_head.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        for current, following in itertools.pairwise(chain):
            model.lm_head.weight[following] = embeddings[current] / embeddings[current].pow(2).mean().sqrt()
    # as many real configs: generation stops at eos only, not at the end of a turn
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def answer_chain(tokenizer: Any, answer: str, ends: bool = True) -> list[int]:
    """The prompt's last token, then ``answer``, the end-of-turn token and an invented next turn."""
    last = _ids(tokenizer, render_prompt(tokenizer, QUESTION))[-1]
    end = [tokenizer.convert_tokens_to_ids(END_OF_TURN[_style(tokenizer)])] if ends else []
    return [last, *_ids(tokenizer, answer), *end, *_ids(tokenizer, " user says more")]


def _style(tokenizer: Any) -> str:
    return next(style for style, token in END_OF_TURN.items() if token in tokenizer.get_vocab())


def test_stop_tokens_include_the_templates_end_of_turn_token(tokenizer: Any) -> None:
    eot = tokenizer.convert_tokens_to_ids(END_OF_TURN[_style(tokenizer)])
    stops = stop_token_ids(tokenizer, scripted_model(tokenizer, [0, 1]))
    assert eot in stops and tokenizer.eos_token_id in stops


def test_generation_stops_at_the_end_of_turn_not_only_at_eos(tokenizer: Any) -> None:
    model = scripted_model(tokenizer, answer_chain(tokenizer, "card_lost"))
    generations = generate_answers(model, tokenizer, [QUESTION, QUESTION], max_new_tokens=16, batch_size=2)
    assert [g.text for g in generations] == ["card_lost", "card_lost"]
    assert all(g.finished for g in generations)


def test_an_answer_cut_by_max_new_tokens_is_marked_unfinished(tokenizer: Any) -> None:
    model = scripted_model(tokenizer, answer_chain(tokenizer, "card_lost", ends=False))
    (generation,) = generate_answers(model, tokenizer, [QUESTION], max_new_tokens=4, batch_size=1)
    assert not generation.finished and generation.new_tokens == 4


def test_answer_token_count_includes_the_end_of_turn_marker(tokenizer: Any) -> None:
    count = answer_token_count(tokenizer, LONG_LABEL)
    assert count == len(LABEL_PIECES) + 1
    assert answer_token_count(tokenizer, "balance_not_updated_after_cheque_or_cash_deposit") > 9
    model = scripted_model(tokenizer, answer_chain(tokenizer, LONG_LABEL))
    (generation,) = generate_answers(model, tokenizer, [QUESTION], max_new_tokens=count, batch_size=1)
    assert generation.finished and generation.text == LONG_LABEL


# --- MMLU encoding: lm-eval's, BOS included ----------------------------------------------------

Q = MmluQuestion(subject="anatomy", question="What is 1+1?", choices=("1", "2", "3", "4"), answer=1)


def test_mmlu_pairs_are_encoded_as_lm_eval_does_with_a_bos_adding_tokenizer() -> None:
    llama3 = train_tokenizer("llama3")
    context = build_prompt(Q)
    ctx, cont = encode_pair(llama3, context, " A")
    assert ctx[0] == llama3.bos_token_id  # lm-eval 0.4.13: tokenizer.encode() with its defaults
    assert ctx == llama3.encode(context)
    assert ctx + cont == llama3.encode(context + " A")
    # a context ending in a space: the space moves to the continuation (lm-eval's _encode_pair)
    ctx_space, cont_space = encode_pair(llama3, context + " ", "A")
    assert (ctx_space, cont_space) == (ctx, cont)


def test_mmlu_pairs_without_bos_for_a_tokenizer_that_adds_none() -> None:
    chatml = train_tokenizer("chatml")
    ctx, _cont = encode_pair(chatml, build_prompt(Q), " A")
    assert ctx == _ids(chatml, build_prompt(Q))


def test_an_mmlu_prompt_over_the_models_context_is_an_error_not_a_silent_cut() -> None:
    llama3 = train_tokenizer("llama3")
    # max_length only sizes batches: a prompt longer than it is still scored whole
    assert len(answer_mmlu(scripted_model(llama3, [0, 1]), llama3, [Q], {}, batch_size=2, max_length=16)) == 1
    short_context = scripted_model(llama3, [0, 1], max_positions=24)
    with pytest.raises(TrainingError, match=r"longer than the model's context of 24 tokens .*--mmlu-shots"):
        answer_mmlu(short_context, llama3, [Q], {}, batch_size=2, max_length=16)


# --- evaluate: labels, max_new_tokens, task rule -----------------------------------------------


@pytest.fixture(scope="module")
def long_label_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scripted model (Gemma-style tokenizer) that answers every question with LONG_LABEL."""
    tokenizer = tiny_tokenizer("gemma")
    folder = tmp_path_factory.mktemp("scripted")
    scripted_model(tokenizer, answer_chain(tokenizer, LONG_LABEL)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _eval_set(path: Path, golds: list[str]) -> Path:
    return write_records(
        [ConversationRecord.from_turns([("user", "I lost my card"), ("assistant", g)]) for g in golds], path
    )


def test_max_new_tokens_defaults_to_the_longest_label_plus_end_of_turn(
    long_label_model: Path, tmp_path: Path
) -> None:
    data = _eval_set(tmp_path / "eval.jsonl", [LONG_LABEL, "card_lost", LONG_LABEL, "card_lost"])
    common = ["--base-model", str(long_label_model), "--domain-data", str(data), "--no-mmlu"]
    assert evaluate.main([*common, "--output", str(tmp_path / "default")]) == 0
    result = EvalResult.from_json((tmp_path / "default" / "eval.json").read_bytes())
    assert result.domain is not None and result.domain.classification is not None
    assert result.domain.truncated == 0
    assert result.domain.max_new_tokens == len(LABEL_PIECES) + 1
    assert result.domain.classification.accuracy == 0.5  # every answer is the long label: right on half
    assert result.domain.task_rule is not None and result.domain.task_rule.startswith("classification")
    # a budget too small for the label (the demo's 8) cuts it: no label, nothing right
    assert evaluate.main([*common, "--max-new-tokens", "8", "--output", str(tmp_path / "eight")]) == 0
    cut = EvalResult.from_json((tmp_path / "eight" / "eval.json").read_bytes())
    assert cut.domain is not None and cut.domain.classification is not None
    assert cut.domain.truncated == 4 and cut.domain.classification.accuracy == 0.0


def test_per_item_outcomes_are_saved_without_text(long_label_model: Path, tmp_path: Path) -> None:
    data = _eval_set(tmp_path / "eval.jsonl", [LONG_LABEL, "card_lost"] * 3)
    assert evaluate.main(["--base-model", str(long_label_model), "--domain-data", str(data), "--no-mmlu",
                          "--output", str(tmp_path / "out")]) == 0  # fmt: skip
    raw = (tmp_path / "out" / "eval.json").read_text()
    items = EvalResult.from_json(raw).domain.items  # type: ignore[union-attr]
    assert (
        items is not None and len(items.ids) == 6 and items.gold is not None and items.predicted is not None
    )
    assert "I lost my card" not in raw


def test_a_gold_outside_the_given_labels_fails_the_evaluation(
    long_label_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _eval_set(tmp_path / "eval.jsonl", ["card_lost", "refund"])
    code = evaluate.main(["--base-model", str(long_label_model), "--domain-data", str(data), "--no-mmlu",
                          "--labels", "card_lost", "--output", str(tmp_path / "out")])  # fmt: skip
    assert code == 1 and "'refund'" in capsys.readouterr().err


# --- rehearsal: only answers that ended on their own -------------------------------------------


def test_rehearsal_keeps_only_answers_that_ended_and_counts_the_rest(
    long_label_model: Path, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(orjson.dumps({"prompt": "I lost my card"}).decode() + "\n" for _ in range(3)))
    common = ["--base-model", str(long_label_model), "--prompts", str(prompts)]
    assert (
        generate_rehearsal.main([*common, "--max-new-tokens", "32", "--output", str(tmp_path / "ok.jsonl")])
        == 0
    )
    kept = [
        ConversationRecord.from_json_line(line) for line in (tmp_path / "ok.jsonl").read_text().splitlines()
    ]
    assert [r.final_answer for r in kept] == [LONG_LABEL] * 3
    # cut at 4 tokens: before, these were written as complete answers with an end-of-turn marker
    code = generate_rehearsal.main(
        [*common, "--max-new-tokens", "4", "--output", str(tmp_path / "cut.jsonl")]
    )
    assert code == 1
    assert not (tmp_path / "cut.jsonl").exists()
    # asked for explicitly, they are kept and counted
    code = generate_rehearsal.main(
        [*common, "--max-new-tokens", "4", "--keep-truncated", "--output", str(tmp_path / "kept.jsonl")]
    )
    assert code == 0
    manifest = orjson.loads((tmp_path / "kept.manifest.json").read_bytes())
    assert manifest["records"] == 3 and manifest["truncated"] == 3 and manifest["truncated_kept"]


def test_rehearsal_manifest_counts_dropped_answers(long_label_model: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(orjson.dumps({"prompt": "I lost my card"}).decode() + "\n")
    assert generate_rehearsal.main(["--base-model", str(long_label_model), "--prompts", str(prompts),
                                    "--output", str(tmp_path / "r.jsonl")]) == 0  # fmt: skip
    manifest = orjson.loads((tmp_path / "r.manifest.json").read_bytes())
    assert manifest["records"] == 1 and manifest["truncated"] == 0 and manifest["answered"] == 1


# --- batching ----------------------------------------------------------------------------------


def test_token_batches_put_more_short_items_in_a_batch_within_the_same_memory() -> None:
    lengths = [100, 10, 10, 10, 10, 10, 10, 10, 10, 100]
    batches = token_batches(by_length(lengths), lengths, batch_size=2, max_length=100)
    assert batches == [[0, 9], [1, 2, 3, 4, 5, 6, 7, 8]]  # 2 x 100 tokens, then 8 x 10 <= 200
    assert sorted(i for b in batches for i in b) == list(range(10))


def test_a_batch_out_of_gpu_memory_is_halved_and_retried() -> None:
    import torch

    calls: list[int] = []

    def run(batch: list[int]) -> list[int]:
        calls.append(len(batch))
        if len(batch) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return [i * 10 for i in batch]

    assert run_batches([[0, 1, 2, 3, 4], [5]], run) == [0, 10, 20, 30, 40, 50]
    assert calls == [5, 2, 3, 1, 2, 1]
    with pytest.raises(ValueError):
        run_batches([[1]], lambda batch: (_ for _ in ()).throw(ValueError("not memory")))


def _prepared_classification(folder: Path, labels: list[str], per_label: int) -> Path:
    """``mixtune prepare`` on a text,label CSV: the eval split with its report.json beside it."""
    from mixtune.dataprep import PrepareOptions, prepare_dataset

    rows = [f"message {i} of {label},{label}" for label in labels for i in range(per_label)]
    source = folder / "intents.csv"
    source.write_text("text,label\n" + "\n".join(rows) + "\n")
    prepare_dataset(str(source), str(folder / "prepared"), PrepareOptions(eval_share=0.25))
    return folder / "prepared" / "eval.jsonl"


def gold_answers(split: Path) -> set[str]:
    return {
        orjson.loads(line)["messages"][-1]["content"][0]["text"] for line in split.read_bytes().splitlines()
    }


def test_the_prepared_label_set_decides_classification_for_an_eval_split_too_small_to_show_it(
    long_label_model: Path, tmp_path: Path
) -> None:
    labels = [LONG_LABEL, *(f"intent_{i:02d}" for i in range(39))]
    split = _prepared_classification(tmp_path, labels, per_label=3)
    common = ["--base-model", str(long_label_model), "--no-mmlu"]
    assert evaluate.main([*common, "--domain-data", str(split), "--output", str(tmp_path / "beside")]) == 0
    domain = EvalResult.from_json((tmp_path / "beside" / "eval.json").read_bytes()).domain
    assert domain is not None and domain.task == "classification" and domain.items is not None
    assert (
        domain.task_rule is not None and "label column of the prepared dataset (40 labels" in domain.task_rule
    )
    # every label can be answered (the longest sizes max_new_tokens); macro-F1 averages over
    # the labels the split's answers or predictions hold, not over labels it never shows
    assert domain.max_new_tokens == len(LABEL_PIECES) + 1 and domain.truncated == 0
    assert domain.classification is not None and domain.items.labels is not None
    assert set(domain.items.labels) == {*gold_answers(split), LONG_LABEL}
    seen = len(domain.items.labels)
    right = domain.classification.accuracy * domain.n
    assert domain.classification.macro_f1 == pytest.approx(
        (2 * right / (right + domain.n) if right else 0.0) / seen
    )

    # The same answers away from their report (or under a report of other data): told from the
    # answers alone, which repeat too little here.
    for name, edited in (("alone", False), ("edited", True)):
        folder = tmp_path / name / "prepared"
        folder.mkdir(parents=True)
        (folder / "eval.jsonl").write_bytes(split.read_bytes())
        if edited:  # the report, beside a split that lost a line since
            (folder / "report.json").write_bytes((split.parent / "report.json").read_bytes())
            (folder / "eval.jsonl").write_bytes(b"".join(split.read_bytes().splitlines(keepends=True)[1:]))
        out = tmp_path / f"out-{name}"
        assert (
            evaluate.main([*common, "--domain-data", str(folder / "eval.jsonl"), "--output", str(out)]) == 0
        )
        other = EvalResult.from_json((out / "eval.json").read_bytes()).domain
        assert other is not None and other.task == "freeform", name
