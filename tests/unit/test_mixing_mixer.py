"""The mixer end to end on small local files."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mixtune import storage
from mixtune.dataprep import DatasetError
from mixtune.dataprep.tokens import estimate_record_tokens
from mixtune.mixing import Catalog, MixError, MixSpec, mix_datasets
from mixtune.mixing import lines as mixing_lines
from mixtune.records import ConversationRecord


def write_source(path: Path, count: int, tag: str, words: int = 6) -> list[str]:
    lines = [
        ConversationRecord.from_turns(
            [("user", f"{tag} question {i} " + "filler " * (i % words)), ("assistant", f"{tag} answer {i}")]
        ).to_json_line()
        for i in range(count)
    ]
    path.write_text("".join(line + "\n" for line in lines))
    return lines


@pytest.fixture
def inputs(tmp_path: Path, prepared_catalog: Callable[..., Catalog]) -> tuple[Path, Catalog]:
    write_source(tmp_path / "domain.jsonl", 300, "dom")
    write_source(tmp_path / "a.jsonl", 60, "ga")
    write_source(tmp_path / "b.jsonl", 500, "gb")
    return tmp_path / "domain.jsonl", prepared_catalog(
        a=("alpha", tmp_path / "a.jsonl"), b=("beta", tmp_path / "b.jsonl")
    )


SPEC = {"domain_percent": 75, "categories": {"alpha": 40, "beta": 60}, "seed": 11}


def test_mix_writes_exact_counts_and_a_manifest(inputs: tuple[Path, Catalog], tmp_path: Path) -> None:
    domain, catalog = inputs
    manifest = mix_datasets(str(domain), catalog, SPEC, str(tmp_path / "out"))
    mixed = (tmp_path / "out" / "mixed.jsonl").read_bytes()
    assert manifest.output.records == 400 == mixed.count(b"\n")
    assert [(p.name, p.records) for p in manifest.parts] == [("domain", 300), ("alpha", 40), ("beta", 60)]
    assert manifest.part("domain").record_percent == 75.0
    assert manifest.output.sha256 == storage.sha256_of(str(tmp_path / "out" / "mixed.jsonl"))
    assert manifest.source("a").input_sha256 == storage.sha256_of(catalog.sources[0].uri)
    assert manifest.source("domain").input_sha256 == storage.sha256_of(str(domain))
    on_disk = orjson.loads((tmp_path / "out" / "manifest.json").read_bytes())
    assert on_disk["output"]["sha256"] == manifest.output.sha256
    assert on_disk["spec"]["seed"] == 11
    # Every domain record exactly once; general records without replacement; all valid records.
    lines = mixed.decode().splitlines()
    assert sorted(line for line in lines if '"dom ' in line) == sorted(
        (tmp_path / "domain.jsonl").read_text().splitlines()
    )
    assert max(Counter(lines).values()) == 1
    for line in lines:
        ConversationRecord.from_json_line(line)
    tokens = sum(estimate_record_tokens(ConversationRecord.from_json_line(line).texts()) for line in lines)
    assert manifest.output.tokens == tokens


def test_same_seed_is_byte_identical_and_another_seed_reorders(
    inputs: tuple[Path, Catalog], tmp_path: Path
) -> None:
    domain, catalog = inputs
    spec = {**SPEC, "categories": {"alpha": 100}, "domain_percent": 90}  # alpha's 60 records: 33 of them
    outputs = {}
    for name, seed in (("one", 5), ("two", 5), ("three", 6)):
        mix_datasets(str(domain), catalog, {**spec, "seed": seed}, str(tmp_path / name))
        outputs[name] = (tmp_path / name / "mixed.jsonl").read_bytes()
    assert outputs["one"] == outputs["two"]
    assert outputs["one"] != outputs["three"]
    first, third = outputs["one"].splitlines(), outputs["three"].splitlines()
    domain_first = [line for line in first if b'"dom ' in line]
    domain_third = [line for line in third if b'"dom ' in line]
    assert sorted(domain_first) == sorted(domain_third)  # same records ...
    assert domain_first != domain_third  # ... in another order


def test_manifest_is_reproducible_too(inputs: tuple[Path, Catalog], tmp_path: Path) -> None:
    domain, catalog = inputs
    a = mix_datasets(str(domain), catalog, SPEC, str(tmp_path / "same"))
    b = mix_datasets(str(domain), catalog, SPEC, str(tmp_path / "same"))
    assert a == b
    assert a.output.sha256 == b.output.sha256


def test_small_source_is_oversampled_with_a_warning(inputs: tuple[Path, Catalog], tmp_path: Path) -> None:
    domain, catalog = inputs
    spec = {"domain_percent": 50, "categories": {"alpha": 100}, "seed": 1, "max_oversample": 5}  # 300 of 60
    manifest = mix_datasets(str(domain), catalog, spec, str(tmp_path / "out"))
    alpha = manifest.source("a")
    assert alpha.oversampled
    assert (alpha.selected_records, alpha.unique_records) == (300, 60)
    assert any(
        "'alpha' needs 300 records but holds 60" in w and "oversampled" in w for w in manifest.warnings
    )
    lines = (tmp_path / "out" / "mixed.jsonl").read_text().splitlines()
    assert set(Counter(line for line in lines if '"ga ' in line).values()) == {5}
    on_disk = orjson.loads((tmp_path / "out" / "manifest.json").read_bytes())
    assert on_disk["warnings"] == manifest.warnings


def test_small_source_fails_when_the_spec_says_so(inputs: tuple[Path, Catalog], tmp_path: Path) -> None:
    domain, catalog = inputs
    spec = {"domain_percent": 50, "categories": {"alpha": 100}, "on_small_source": "fail"}
    with pytest.raises(MixError, match="'alpha' needs 300 records but holds 60"):
        mix_datasets(str(domain), catalog, spec, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_total_size_samples_the_domain_too(inputs: tuple[Path, Catalog], tmp_path: Path) -> None:
    domain, catalog = inputs
    manifest = mix_datasets(str(domain), catalog, {**SPEC, "total": 101}, str(tmp_path / "out"))
    assert manifest.output.records == 101
    assert [p.records for p in manifest.parts] == [76, 10, 15]  # 75.75 -> 76, 10.1 -> 10, 15.15 -> 15
    assert manifest.source("domain").unique_records == 76


def test_dry_run_plans_and_writes_nothing(inputs: tuple[Path, Catalog], tmp_path: Path) -> None:
    domain, catalog = inputs
    manifest = mix_datasets(str(domain), catalog, SPEC, str(tmp_path / "out"), dry_run=True)
    assert manifest.dry_run
    assert manifest.output.records == 400
    assert manifest.output.sha256 is None
    assert not (tmp_path / "out").exists()
    plan = "\n".join(manifest.plan_lines())
    assert "domain" in plan and "75.00%" in plan and "beta" in plan


def test_dry_run_and_mix_report_the_same_input_hashes_and_tokens(
    inputs: tuple[Path, Catalog], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dry run hashes and measures in pass one; a mix does both while routing (pass two).
    domain, catalog = inputs
    monkeypatch.setattr(mixing_lines, "BLOCK_BYTES", 1500)  # many blocks per file
    planned = mix_datasets(str(domain), catalog, SPEC, str(tmp_path / "plan"), dry_run=True)
    mixed = mix_datasets(str(domain), catalog, SPEC, str(tmp_path / "out"))
    for before, after in zip(planned.sources, mixed.sources, strict=True):
        assert (
            before.input_sha256
            == after.input_sha256
            == storage.sha256_of(
                str(domain)
                if before.name == "domain"
                else next(s.uri for s in catalog.sources if s.name == before.name)
            )
        )
        assert (before.available_tokens, before.selected_tokens, before.max_record_tokens) == (
            after.available_tokens,
            after.selected_tokens,
            after.max_record_tokens,
        )
    parsed = [
        estimate_record_tokens(ConversationRecord.model_validate_json(line).texts())
        for line in domain.read_text().splitlines()
    ]
    assert mixed.source("domain").available_tokens == sum(parsed)
    assert mixed.source("domain").max_record_tokens == max(parsed)


def test_token_mode_meets_token_targets_within_one_record(
    inputs: tuple[Path, Catalog], tmp_path: Path
) -> None:
    domain, catalog = inputs
    manifest = mix_datasets(str(domain), catalog, {**SPEC, "unit": "tokens"}, str(tmp_path / "out"))
    domain_tokens = manifest.source("domain").selected_tokens
    assert domain_tokens == manifest.source("domain").available_tokens
    mixed_target = domain_tokens / 0.75
    for source, share in (("a", 0.25 * 0.4), ("b", 0.25 * 0.6)):
        report = manifest.source(source)
        assert abs(report.selected_tokens - share * mixed_target) <= report.max_record_tokens
    assert abs(manifest.part("domain").token_percent - 75) * manifest.output.tokens / 100 <= max(
        s.max_record_tokens for s in manifest.sources
    )


def test_many_buckets_still_give_an_exact_seeded_permutation(
    inputs: tuple[Path, Catalog], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    domain, catalog = inputs
    mix_datasets(str(domain), catalog, SPEC, str(tmp_path / "one-bucket"))
    monkeypatch.setattr(mixing_lines, "BUCKET_BYTES", 2000)
    monkeypatch.setattr(mixing_lines, "BLOCK_BYTES", 1500)
    outputs = {}
    # All buckets in memory, some spilled to files, all on files: the same bytes.
    for name, memory in (("memory", 1 << 30), ("mixed", 20_000), ("files", 0), ("files-again", 0)):
        monkeypatch.setattr(mixing_lines, "MEMORY_BYTES", memory)
        mix_datasets(str(domain), catalog, SPEC, str(tmp_path / name))
        outputs[name] = (tmp_path / name / "mixed.jsonl").read_bytes()
    assert outputs["memory"] == outputs["mixed"] == outputs["files"] == outputs["files-again"]
    single = (tmp_path / "one-bucket" / "mixed.jsonl").read_bytes().splitlines()
    assert sorted(outputs["files"].splitlines()) == sorted(single)
    assert outputs["files"].splitlines() != single  # another bucket count, another order


@pytest.mark.parametrize("memory", [0, 1 << 30])
def test_blank_lines_in_a_prepared_file_are_an_error(
    inputs: tuple[Path, Catalog], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory: int
) -> None:
    domain, catalog = inputs
    monkeypatch.setattr(mixing_lines, "MEMORY_BYTES", memory)
    lines = domain.read_text().splitlines()
    domain.write_text("\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]) + "\n")
    with pytest.raises(DatasetError, match="line 6: blank line"):
        mix_datasets(str(domain), catalog, {"domain_percent": 100}, str(tmp_path / "out"))


def test_an_empty_category_is_an_error(
    inputs: tuple[Path, Catalog], tmp_path: Path, prepared_catalog: Callable[..., Catalog]
) -> None:
    domain, _ = inputs
    (tmp_path / "empty.jsonl").write_text("")
    catalog = prepared_catalog(e=("alpha", tmp_path / "empty.jsonl"))
    with pytest.raises(MixError, match="'alpha' has no records"):
        mix_datasets(
            str(domain), catalog, {"domain_percent": 75, "categories": {"alpha": 100}}, str(tmp_path / "o")
        )


def test_all_domain_mix_is_a_shuffle_of_the_domain(inputs: tuple[Path, Catalog], tmp_path: Path) -> None:
    domain, catalog = inputs
    manifest = mix_datasets(str(domain), catalog, {"domain_percent": 100}, str(tmp_path / "out"))
    assert manifest.output.records == 300
    assert [s.name for s in manifest.sources] == ["domain"]
    mixed = (tmp_path / "out" / "mixed.jsonl").read_text().splitlines()
    assert sorted(mixed) == sorted(domain.read_text().splitlines())
    again = mix_datasets(str(domain), None, {"domain_percent": 100}, str(tmp_path / "no-catalog"))
    assert again.output.sha256 == manifest.output.sha256


@st.composite
def mixes(draw: st.DrawFn) -> tuple[int, list[int], float, list[int], str, int | None]:
    domain = draw(st.integers(1, 120))
    sizes = draw(st.lists(st.integers(0, 150), min_size=1, max_size=3))
    sizes[0] = max(sizes[0], 1)
    percent = draw(st.sampled_from([5, 10, 25, 50, 75, 90, 99.5, 100]))
    weights = draw(st.lists(st.integers(1, 9), min_size=len(sizes), max_size=len(sizes)))
    unit = draw(st.sampled_from(["examples", "tokens"]))
    total = draw(st.none() | st.integers(1, 400))
    return domain, sizes, percent, weights, unit, total


@given(mixes())
@example((1, [1, 0], 50, [1, 1], "examples", None))  # an empty category rounding left no records
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_realised_shares_within_one_unit(
    prepared_catalog: Callable[..., Catalog], case: tuple[int, list[int], float, list[int], str, int | None]
) -> None:
    domain_size, sizes, percent, weights, unit, total = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_source(folder / "domain.jsonl", domain_size, "dom", words=9)
        sources = {}
        for i, size in enumerate(sizes):
            write_source(folder / f"s{i}.jsonl", size, f"s{i}", words=4 + i)
            sources[f"s{i}"] = (f"cat{i}", folder / f"s{i}.jsonl")
        categories = {} if percent == 100 else {f"cat{i}": 0.0 for i in range(len(sizes))}
        if categories:
            parts = [w * 100 / sum(weights) for w in weights]
            parts[-1] = 100 - sum(parts[:-1])
            categories = {f"cat{i}": p for i, p in enumerate(parts)}
        spec = MixSpec.parse(
            {
                "domain_percent": percent,
                "categories": categories,
                "unit": unit,
                "seed": 3,
                "total": total * 40 if (total and unit == "tokens") else total,
                "max_oversample": 1e9,  # shares are the property here, not the oversampling cap
            }
        )
        empty = [i for i, size in enumerate(sizes) if size == 0 and categories.get(f"cat{i}", 0) > 0]
        if empty:
            with pytest.raises(MixError, match="has no records"):
                mix_datasets(
                    str(folder / "domain.jsonl"), prepared_catalog(**sources), spec, str(folder / "out")
                )
            return
        manifest = mix_datasets(
            str(folder / "domain.jsonl"), prepared_catalog(**sources), spec, str(folder / "out")
        )
        lines = (folder / "out" / "mixed.jsonl").read_bytes().count(b"\n")
        assert lines == manifest.output.records
        if unit == "examples":
            for part in manifest.parts:
                assert abs(part.records - part.target_percent / 100 * manifest.output.records) < 1
        else:
            for source in manifest.sources:
                if source.target_units:
                    assert abs(source.selected_tokens - source.target_units) <= source.max_record_tokens / 2


@pytest.mark.parametrize("count_tokens", [False, True])
def test_a_last_line_without_newline_is_still_a_record(
    inputs: tuple[Path, Catalog], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count_tokens: bool
) -> None:
    domain, catalog = inputs
    monkeypatch.setattr(mixing_lines, "BLOCK_BYTES", 1500)  # many blocks, the last one partial
    domain.write_bytes(domain.read_bytes().rstrip(b"\n"))
    manifest = mix_datasets(
        str(domain), catalog, {"domain_percent": 100}, str(tmp_path / "out"), count_tokens=count_tokens
    )
    assert manifest.source("domain").available_records == 300
    assert manifest.source("domain").input_sha256 == storage.sha256_of(str(domain))
    assert len((tmp_path / "out" / "mixed.jsonl").read_bytes().splitlines()) == 300


def test_a_mix_that_would_spill_past_its_temp_budget_stops_before_writing(
    inputs: tuple[Path, Catalog], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: in Lambda the shuffle's spilled buckets must fit /tmp; a mix that would not
    raises SpillBudgetExceeded before writing anything (a mix job takes it over), and within
    its budget the same mix runs and spills."""
    from mixtune.dataprep.errors import SpillBudgetExceeded

    domain, catalog = inputs
    monkeypatch.setattr(mixing_lines, "BUCKET_BYTES", 2000)
    monkeypatch.setattr(mixing_lines, "MEMORY_BYTES", 0)  # every bucket on a file
    with pytest.raises(SpillBudgetExceeded, match=r"shuffling the mix needs about [0-9,]+ bytes"):
        mix_datasets(str(domain), catalog, SPEC, str(tmp_path / "small"), temp_budget_bytes=1000)
    assert not (tmp_path / "small" / "mixed.jsonl").exists()
    manifest = mix_datasets(str(domain), catalog, SPEC, str(tmp_path / "roomy"), temp_budget_bytes=10**9)
    assert manifest.output.records and (tmp_path / "roomy" / "mixed.jsonl").exists()
