"""`mixtune mix` and the prompt bank."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mixtune.cli import main
from mixtune.mixing import load_prompt_bank
from mixtune.mixing.prompt_bank import CATEGORIES
from mixtune.records import ConversationRecord


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name, count in (("domain", 30), ("general", 40)):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(
                ConversationRecord.from_turns([("user", f"{name} q {i}"), ("assistant", "a")]).to_json_line()
                + "\n"
                for i in range(count)
            )
        )
    (tmp_path / "catalog.yaml").write_text(
        "sources:\n  - {name: g, category: general, uri: general.jsonl, format: prepared}\n"
    )
    (tmp_path / "spec.yaml").write_text("domain_percent: 75\ncategories: {general: 100}\nseed: 2\n")
    return tmp_path


def run_mix(folder: Path, *extra: str, spec: str = "spec.yaml") -> int:
    return main(
        [
            "mix",
            "--domain",
            str(folder / "domain.jsonl"),
            "--catalog",
            str(folder / "catalog.yaml"),
            "--spec",
            str(folder / spec),
            "--out",
            str(folder / "out"),
            *extra,
        ]
    )


def test_dry_run_prints_the_plan_and_writes_nothing(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_mix(files, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "domain" in out and "75.00%" in out and "30 of 30 records" in out and "10 of 40 records" in out
    assert "nothing written" in out
    assert not (files / "out").exists()


def test_mix_writes_output_and_manifest(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_mix(files, "--seed", "9") == 0
    manifest = orjson.loads((files / "out" / "manifest.json").read_bytes())
    assert manifest["seed"] == 9
    assert (files / "out" / "mixed.jsonl").read_text().count("\n") == 40
    assert "sha256" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("domain_percent: 75\ncategories: {general: 90}\n", "sum to 100"),
        ("domain_percent: 75\ncategories: {poetry: 100}\n", "the catalog knows: general"),
        ("domain_percent: [\n", "not valid YAML"),
    ],
)
def test_bad_specs_exit_2_with_one_line(
    files: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    (files / "bad.yaml").write_text(spec)
    assert run_mix(files, spec="bad.yaml") == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_bad_catalog_exits_2(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (files / "catalog.yaml").write_text("sources:\n  - {name: g, category: general}\n")
    assert run_mix(files) == 2
    assert "invalid catalog" in capsys.readouterr().err


def test_too_small_with_fail_exits_1(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (files / "fail.yaml").write_text(
        "domain_percent: 10\ncategories: {general: 100}\non_small_source: fail\n"
    )
    assert run_mix(files, spec="fail.yaml") == 1
    assert "needs 270 records but holds 40" in capsys.readouterr().err


def test_prompt_bank_has_300_varied_prompts_in_every_category() -> None:
    bank = load_prompt_bank()
    assert len(bank) >= 300
    assert len({p.id for p in bank}) == len(bank)
    assert len({p.prompt.strip().lower() for p in bank}) == len(bank)
    assert {p.category for p in bank} == set(CATEGORIES)
    assert min(sum(p.category == c for p in bank) for c in CATEGORIES) >= 30
    assert all(len(p.prompt) >= 20 for p in bank)
    assert {p.category for p in load_prompt_bank(("code", "reason"))} == {"code", "reason"}
