"""Oversampling has a cap: a general source far too small for the mix fails it with the number needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mixtune.mixing import Catalog, MixError, MixSpec, mix_datasets
from mixtune.records import ConversationRecord


def _write(path: Path, count: int, tag: str) -> Path:
    path.write_text(
        "".join(
            ConversationRecord.from_turns(
                [("user", f"{tag} q{i}"), ("assistant", f"{tag} a{i}")]
            ).to_json_line()
            + "\n"
            for i in range(count)
        )
    )
    return path


@pytest.fixture
def banking_sized(tmp_path: Path, prepared_catalog: Callable[..., Catalog]) -> tuple[Path, Catalog]:
    """Issue 20's case: 10,000 domain records, a 56-record self-rehearsal file."""
    domain = _write(tmp_path / "domain.jsonl", 10_000, "dom")
    rehearsal = _write(tmp_path / "rehearsal.jsonl", 56, "reh")
    return domain, prepared_catalog(rehearsal=("self_rehearsal", rehearsal))


def test_a_mix_needing_60x_oversampling_fails_with_the_number_needed(
    banking_sized: tuple[Path, Catalog], tmp_path: Path
) -> None:
    domain, catalog = banking_sized
    spec = {"domain_percent": 75, "categories": {"self_rehearsal": 100}}  # 3,333 general records of 56
    with pytest.raises(MixError) as failure:
        mix_datasets(str(domain), catalog, spec, str(tmp_path / "out"))
    message = str(failure.value)
    assert "needs 3,333 records but holds 56" in message
    assert "59.5x oversampling is over max_oversample 4" in message
    assert "at least 834 records" in message and "3,333 to use each once" in message
    assert not (tmp_path / "out").exists()


def test_oversampling_within_the_cap_still_mixes_with_a_warning(
    banking_sized: tuple[Path, Catalog], tmp_path: Path
) -> None:
    domain, catalog = banking_sized
    spec = {"domain_percent": 75, "categories": {"self_rehearsal": 100}, "total": 800}  # 200 of 56: 3.6x
    manifest = mix_datasets(str(domain), catalog, spec, str(tmp_path / "out"))
    assert manifest.source("rehearsal").oversampled
    assert any("oversampled 3.6x" in w for w in manifest.warnings)


def test_the_cap_is_a_spec_field() -> None:
    assert MixSpec(domain_percent=75, categories={"g": 100}).max_oversample == 4.0
    assert MixSpec(domain_percent=75, categories={"g": 100}, max_oversample=100).max_oversample == 100
    with pytest.raises(ValueError):
        MixSpec(domain_percent=75, categories={"g": 100}, max_oversample=0.5)


def test_general_records_needed_follows_the_mix() -> None:
    spec = MixSpec(domain_percent=75, categories={"self_rehearsal": 60, "code": 40})
    assert spec.general_records_needed(10_000) == {"self_rehearsal": 2000, "code": 1333}
    assert MixSpec(domain_percent=100).general_records_needed(500) == {}
