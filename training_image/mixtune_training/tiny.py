"""``tiny``: a small random Llama-style model and a byte-level BPE tokenizer trained on the fly.

Built deterministically in a second or two and cached, it lets the default test suite, the
quick demo and the local-cloud e2e tests run the real training and evaluation code paths.
Its answers are noise; only the mechanics matter.
"""

from __future__ import annotations

import os
from pathlib import Path

TINY_VERSION = "v1"
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = """\
The following are multiple choice questions (with answers) about general knowledge.
Answer: A B C D
I think I lost my card yesterday, what should I do? card_lost card_delivery refund_status
When will my new card arrive? My transfer failed and the payment was declined.
What exchange rate do you use for dollars? I can't log in, my account seems locked.
I moved to a new city, how do I update my address? The top up did not work.
You are a helpful assistant. Please answer the question briefly and politely.
Water boils at one hundred degrees Celsius at sea level.
The capital of France is Paris. The sun is a star. Plants need light to grow.
system user assistant question answer label intent text customer support bank account
0 1 2 3 4 5 6 7 8 9 + - * / = ( ) [ ] { } < > , . ; : ! ? ' " _ |
"""


def cache_root() -> Path:
    return Path(os.environ.get("MIXTUNE_CACHE") or Path.home() / ".cache" / "mixtune") / "models"


def _train_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodes: no unknown tokens
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        chat_template=CHATML_TEMPLATE,
        model_max_length=2048,
    )


def build_tiny(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_model_dir() -> Path:
    """The cached tiny model folder, built on first use (once, however many processes ask)."""
    from mixtune_training.cache import fill_once

    target = cache_root() / f"tiny-{TINY_VERSION}"
    if (target / "config.json").is_file():  # earlier versions renamed the whole folder into place too
        return target
    fill_once(target, build_tiny)
    return target
