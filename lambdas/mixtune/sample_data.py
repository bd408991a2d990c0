"""A synthetic customer-support intent classification task, written for this project.

Used by the demo, the slow training test and the forgetting experiment: a domain task
scored by F1, like the customer-classification tasks data mixing was first shown on.
Messages are assembled from templates and slot values with a seeded RNG, so a given
``(n, seed)`` always gives the same rows. Some rows can carry chat-template collisions
(role markers before a colon, special tokens) so that sanitizing has something to show.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Sequence
from pathlib import Path

from mixtune.records import ConversationRecord

INTENT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "card_lost": (
        "I think I lost my {card} {when}, what should I do?",
        "My {card} is missing and I can't find it anywhere.",
        "Someone may have taken my {card}, please block it.",
        "I left my {card} at a {place} {when} and it's gone.",
    ),
    "card_delivery": (
        "When will my new {card} arrive?",
        "I ordered a {card} {when} and it still hasn't come.",
        "How long does delivery of a replacement {card} take?",
        "Can you track the {card} you posted to me?",
    ),
    "refund_status": (
        "Where is the refund for my {item}?",
        "The shop said they refunded my {item} {when} but I see nothing.",
        "How long until a refund shows up on my account?",
        "I returned the {item} and I'm still waiting for my money.",
    ),
    "transfer_failed": (
        "My transfer to {person} failed {when}, why?",
        "I tried to send money to {person} and it was declined.",
        "Why does the payment to {person} keep failing?",
        "The transfer I made {when} bounced back.",
    ),
    "exchange_rate": (
        "What exchange rate do you use for {currency}?",
        "How much is one euro in {currency} today?",
        "Why was the {currency} rate on my statement so bad?",
        "Do you add a fee on top of the {currency} exchange rate?",
    ),
    "account_locked": (
        "I can't log in, my account seems locked.",
        "The app says my account is frozen {when}, help.",
        "After three wrong passwords I'm locked out.",
        "Why was access to my account suspended?",
    ),
    "change_address": (
        "I moved to {city}, how do I update my address?",
        "Please change my home address to my new place in {city}.",
        "Where in the app can I edit my postal address?",
        "I need my statements sent to {city} from now on.",
    ),
    "top_up_problem": (
        "My top up with my {card} didn't go through.",
        "I added money {when} but my balance hasn't changed.",
        "Why did my top up fail?",
        "The top up from my {card} is stuck as pending.",
    ),
    "cancel_subscription": (
        "How do I cancel my {plan} plan?",
        "I want to stop paying for {plan} from next month.",
        "Please end my {plan} subscription.",
        "Can I downgrade from {plan} to the free plan?",
    ),
    "pin_reset": (
        "I forgot the PIN of my {card}.",
        "How can I reset my PIN {when}?",
        "My {card} PIN is blocked after wrong tries.",
        "Where do I see or change my PIN?",
    ),
    "unknown_charge": (
        "There's a charge from {merchant} I don't recognise.",
        "I never bought anything at {merchant}, why was I charged?",
        "A payment to {merchant} appeared {when} that isn't mine.",
        "Who is {merchant} and why did they take money?",
    ),
    "open_account": (
        "How do I open an account for my {relative}?",
        "Can I open a joint account with my {relative}?",
        "What documents do I need to open a new account?",
        "I'd like a second account for savings, is that possible?",
    ),
}

INTENTS: tuple[str, ...] = tuple(INTENT_TEMPLATES)

_SLOTS: dict[str, tuple[str, ...]] = {
    "card": ("debit card", "credit card", "virtual card", "travel card", "card"),
    "when": ("yesterday", "last week", "this morning", "two days ago", "on Monday", "today"),
    "place": ("restaurant", "petrol station", "cinema", "train station", "supermarket"),
    "item": ("shoes", "jacket", "headphones", "flight", "order", "phone case"),
    "person": ("my landlord", "my sister", "a friend", "my plumber", "the school"),
    "currency": ("dollars", "yen", "pounds", "Swiss francs", "Polish zloty"),
    "city": ("Leeds", "Lyon", "Porto", "Graz", "Utrecht", "Cork"),
    "plan": ("Premium", "Metal", "Plus", "Family"),
    "merchant": ("ACME Stores", "QuickPay Ltd", "Nordic Media", "ShopOne", "CityParking"),
    "relative": ("son", "daughter", "partner", "mother", "teenager"),
}

_OPENERS = ("", "", "", "Hi, ", "Hello, ", "Hey there. ", "Good morning, ", "Quick question: ")
_CLOSERS = ("", "", "", " Thanks!", " Thank you.", " Please help.", " Cheers")

# Strings that collide with chat templates: what the sanitizer repairs.
_COLLISIONS = (
    "User: {text}",
    "{text} Assistant: ",
    "{text} [EOS]",
    "System: urgent. {text}",
    "{text} <|endoftext|>",
    "customer: {text}",
    "<image> {text}",
)


def _message(rng: random.Random, intent: str) -> str:
    template = rng.choice(INTENT_TEMPLATES[intent])
    slots = {name: rng.choice(values) for name, values in _SLOTS.items()}
    text = template.format(**slots)
    opener = rng.choice(_OPENERS)
    if opener.endswith(", ") and not text.startswith(("I ", "I'")):
        text = text[0].lower() + text[1:]
    return f"{opener}{text}{rng.choice(_CLOSERS)}"


def support_intents(
    n: int, seed: int = 0, collision_share: float = 0.0, intents: Sequence[str] | None = None
) -> list[dict[str, str]]:
    """``n`` rows ``{"text", "intent"}``, intents balanced, a share with template collisions.

    ``intents`` narrows the task to some of :data:`INTENTS` (an easier task: the quick demo's
    tiny model learns four of them in a few dozen steps); default all of them.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= collision_share <= 1.0:
        raise ValueError("collision_share must be between 0 and 1")
    chosen = tuple(intents) if intents is not None else INTENTS
    unknown = sorted(set(chosen) - set(INTENTS))
    if unknown or not chosen:
        raise ValueError(f"intents must be some of {', '.join(INTENTS)}; got {', '.join(unknown) or 'none'}")
    rng = random.Random(seed)
    rows = []
    for index in range(n):
        intent = chosen[index % len(chosen)]
        text = _message(rng, intent)
        if rng.random() < collision_share:
            text = rng.choice(_COLLISIONS).format(text=text)
        rows.append({"text": text, "intent": intent})
    rng.shuffle(rows)
    return rows


def write_rows(rows: list[dict[str, str]], path: str | Path) -> Path:
    """Write rows as JSONL or CSV, chosen by the file suffix."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".csv":
        with open(target, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "intent"])
            writer.writeheader()
            writer.writerows(rows)
    elif target.suffix == ".jsonl":
        with open(target, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        raise ValueError(f"unsupported suffix {target.suffix!r}: use .jsonl or .csv")
    return target


def support_intent_records(
    n: int,
    seed: int = 0,
    system: str | None = None,
    collision_share: float = 0.0,
    intents: Sequence[str] | None = None,
) -> list[ConversationRecord]:
    """The same rows as conversation records: the message as the user turn, the intent as
    the assistant's answer (what `mixtune prepare` makes of them, without sanitizing)."""
    return [
        ConversationRecord.from_turns([("user", row["text"]), ("assistant", row["intent"])], system=system)
        for row in support_intents(n, seed=seed, collision_share=collision_share, intents=intents)
    ]


def write_records(records: list[ConversationRecord], path: str | Path) -> Path:
    """Write records as compact Converse JSONL."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(record.to_json_line() + "\n" for record in records), encoding="utf-8")
    return target
