"""Training ids are the whole rendered text's tokenisation, for every tokenizer family.

Four tiny tokenizers are trained here in a second: byte-level BPE (GPT-2, Llama 3, SmolLM2),
SentencePiece-style BPE with a prefix space (Llama 2, Mistral), SentencePiece-style Unigram
(T5, Gemma) and WordPiece; each is paired with a chat template of another family. For random
conversations (leading and trailing spaces, newlines, accents included) the ids must equal
``tokenizer(full_text)``: what the model sees at inference. Tokenising turn by turn did not.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixtune.records import ConversationRecord
from mixtune_training.chat import IGNORE_INDEX, to_messages, tokenize_for_training, tokenize_records
from mixtune_training.tiny import CHATML_TEMPLATE

SPECIALS = [
    "<unk>",
    "<s>",
    "</s>",
    "<|pad|>",
    "<|im_start|>",
    "<|im_end|>",
    "[INST]",
    "[/INST]",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]
LLAMA2_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<<SYS>>\n' + message['content'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}"
)
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
ALPHABET = "abcdefghij klmnop\n.,?'é1_"
CORPUS = [
    "Where is my card? card_delivery refund_status, I lost it.",
    "The capital of France is Paris. Plants need light to grow.",
    "Émile asked: what exchange rate do you use? It is 1.2, thanks!",
    "abc def ghij klmnop qrs tuv wxyz 0123456789 é ' , . ? _",
]


def _wrap(tokenizer: Any, template: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<|pad|>",
        chat_template=template,
    )


def _sentencepiece_bpe(template: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=SPECIALS, initial_alphabet=list(ALPHABET + "▁"), show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return _wrap(tokenizer, template)


def _sentencepiece_unigram(template: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.UnigramTrainer(
        vocab_size=200,
        special_tokens=SPECIALS,
        unk_token="<unk>",
        initial_alphabet=list(ALPHABET + "▁"),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return _wrap(tokenizer, template)


def _wordpiece(template: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=SPECIALS, initial_alphabet=list(ALPHABET), show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return _wrap(tokenizer, template)


def _byte_level(template: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # newlines followed by spaces, as chat templates put them before answers, so "\n " is one token
    tokenizer.train_from_iterator([*CORPUS, "assistant\n  card_delivery\n \n  a"] * 4, trainer=trainer)
    return _wrap(tokenizer, template)


FAMILIES = {
    "byte-level BPE + ChatML": (_byte_level, CHATML_TEMPLATE),
    "byte-level BPE + Llama 3": (_byte_level, LLAMA3_TEMPLATE),
    "SentencePiece BPE + Llama 2": (_sentencepiece_bpe, LLAMA2_TEMPLATE),
    "SentencePiece BPE + ChatML": (_sentencepiece_bpe, CHATML_TEMPLATE),
    "SentencePiece Unigram + Llama 3": (_sentencepiece_unigram, LLAMA3_TEMPLATE),
    "WordPiece + Llama 2": (_wordpiece, LLAMA2_TEMPLATE),
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def tokenizer(request: pytest.FixtureRequest) -> Any:
    build, template = FAMILIES[request.param]
    return build(template)


text = st.text(alphabet=ALPHABET, min_size=1, max_size=24).filter(lambda s: s.strip())
conversations = st.tuples(
    st.one_of(st.none(), text), st.lists(st.tuples(text, text), min_size=1, max_size=3)
).map(
    lambda drawn: ConversationRecord.from_turns(
        [turn for user, answer in drawn[1] for turn in (("user", user), ("assistant", answer))],
        system=drawn[0],
    )
)


def _whole_text(tokenizer: Any, record: ConversationRecord) -> str:
    return tokenizer.apply_chat_template(to_messages(record), tokenize=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=conversations)
def test_ids_are_the_whole_text_tokenisation_and_labels_cover_the_answers(tokenizer: Any, record) -> None:  # type: ignore[no-untyped-def]
    full = _whole_text(tokenizer, record)
    expected = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    row = tokenize_for_training(tokenizer, record, max_length=4096)
    assert row is not None
    assert row["input_ids"] == expected["input_ids"]
    assert all(
        label in (IGNORE_INDEX, token) for label, token in zip(row["labels"], row["input_ids"], strict=True)
    )
    # nothing of the first prompt (rendered on its own, with the generation prompt) is learned ...
    first_answer = [m["role"] for m in to_messages(record)].index("assistant")
    prompt = tokenizer.apply_chat_template(
        to_messages(record)[:first_answer], tokenize=False, add_generation_prompt=True
    )
    offsets = expected["offset_mapping"]
    assert all(row["labels"][i] == IGNORE_INDEX for i, (_, end) in enumerate(offsets) if end <= len(prompt))
    # ... and the last answer's end-of-turn marker, the text's final token, is
    last = max(i for i, (start, end) in enumerate(offsets) if end > start)
    assert row["labels"][last] == row["input_ids"][last]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=conversations, max_length=st.integers(min_value=1, max_value=40))
def test_a_batch_is_tokenised_like_each_record_and_cut_at_max_length(
    tokenizer: Any, record, max_length: int
) -> None:  # type: ignore[no-untyped-def]
    other = ConversationRecord.from_turns([("user", "abc"), ("assistant", " def ")])
    rows = tokenize_records(tokenizer, [record, other, record], max_length)
    single = tokenize_for_training(tokenizer, record, max_length)
    assert rows[0] == rows[2] == single
    if single is not None:
        whole = tokenizer(_whole_text(tokenizer, record), add_special_tokens=False)["input_ids"]
        assert single["input_ids"] == whole[:max_length]


def test_answer_starting_with_a_space_keeps_the_whole_text_ids() -> None:
    """The SmolLM2 case of issue 17: a turn starting with whitespace was tokenised apart from
    the prompt, giving one token more than the text the model sees."""
    tokenizer = _byte_level(CHATML_TEMPLATE)
    record = ConversationRecord.from_turns([("user", "Where is my card?"), ("assistant", "  card_delivery")])
    assert tokenizer.tokenize("\n  card") != tokenizer.tokenize("\n") + tokenizer.tokenize("  card")
    row = tokenize_for_training(tokenizer, record, max_length=512)
    assert row is not None
    assert (
        row["input_ids"] == tokenizer(_whole_text(tokenizer, record), add_special_tokens=False)["input_ids"]
    )
    learned = tokenizer.decode(
        [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label >= 0]
    )
    assert learned.endswith("card_delivery<|im_end|>\n")
