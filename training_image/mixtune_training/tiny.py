"""``tiny``: a small random Llama-style model and a byte-level BPE tokenizer trained on the fly.

Built deterministically in a second or two and cached, it lets the default test suite, the
quick demo and the local-cloud e2e tests run the real training and evaluation code paths.
Its answers are noise, but LoRA can teach it a small task in a few dozen steps (the quick
demo's four support intents, see ``mixtune.demo.runner.QUICK``): its weights are initialised
at std ``INIT_STD`` and its output layer at ``LM_HEAD_STD`` (see :func:`build_tiny` for why).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TINY_VERSION = "v2"  # v2: the larger initialisation (v1 could not learn under LoRA)
# Llama's default (0.02) leaves a 64-wide random model whose LoRA adapters barely move its
# outputs; 0.1 gives attention and values that carry a prompt's words to the answer position.
INIT_STD = 0.1
# The output layer is frozen under LoRA (TRL refuses an adapter on it) and reads a hidden state
# the final RMSNorm holds at unit RMS, so its weights' scale caps every logit at about std x
# hidden size: 1.3 at std 0.02 (no answer can become likely), 13 at 0.2.
LM_HEAD_STD = 0.2
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass(frozen=True)
class TokenizerStyle:
    """Special tokens and chat template of a model family, for tiny stand-ins of real tokenizers."""

    special_tokens: tuple[str, ...]
    eos: str
    template: str
    bos: str | None = None  # prepended by the tokenizer itself (add_special_tokens=True), as Llama 3 does
    pad: str = "<|pad|>"


# Only the parts that matter to scoring: where a turn ends, which token is "eos", whether BOS is added.
STYLES: dict[str, TokenizerStyle] = {
    "chatml": TokenizerStyle(tuple(SPECIAL_TOKENS), "<|im_end|>", CHATML_TEMPLATE),
    # Llama 3 / 3.1: the tokenizer adds <|begin_of_text|>; eos <|end_of_text|>; a turn ends with <|eot_id|>.
    "llama3": TokenizerStyle(
        (
            "<|pad|>",
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
        ),
        "<|end_of_text|>",
        "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
        "{{ message['content'] | trim }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}",
        bos="<|begin_of_text|>",
    ),
    # Gemma: <bos> added by the tokenizer, eos <eos>, a turn ends with <end_of_turn>.
    "gemma": TokenizerStyle(
        ("<|pad|>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"),
        "<eos>",
        "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
        "{{ message['content'] | trim }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
        bos="<bos>",
    ),
    # Phi-3: eos <|endoftext|>, a turn ends with <|end|>.
    "phi3": TokenizerStyle(
        ("<|pad|>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
        "<|endoftext|>",
        "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}",
    ),
}
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


def train_tokenizer(style: str = "chatml"):  # type: ignore[no-untyped-def]
    """A byte-level BPE tokenizer trained in a second, with the special tokens and template of ``style``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    spec = STYLES[style]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=640,
        special_tokens=list(spec.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodes: no unknown tokens
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    if spec.bos is not None:
        bos_id = tokenizer.token_to_id(spec.bos)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{spec.bos} $A", pair=f"{spec.bos} $A {spec.bos} $B", special_tokens=[(spec.bos, bos_id)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=spec.bos,
        eos_token=spec.eos,
        pad_token=spec.pad,
        unk_token=None,
        chat_template=spec.template,
        model_max_length=2048,
    )


_train_tokenizer = train_tokenizer  # the name older tests import


def tiny_config(
    tokenizer, num_hidden_layers: int = 2, intermediate_size: int = 128, max_positions: int = 2048
):  # type: ignore[no-untyped-def]
    """The tiny Llama's config for ``tokenizer`` (its vocabulary and special tokens)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        initializer_range=INIT_STD,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )


def build_tiny(folder: Path, style: str = "chatml") -> Path:
    """A random 2-layer Llama with a tokenizer of ``style`` (see STYLES) saved in ``folder``."""
    import torch
    from transformers import LlamaForCausalLM

    tokenizer = train_tokenizer(style)
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_config(tokenizer))
    with torch.no_grad():
        model.lm_head.weight.normal_(mean=0.0, std=LM_HEAD_STD)
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
