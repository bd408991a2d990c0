"""MixSpec validation and the catalog model."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixtune.mixing import Catalog, CatalogError, MixSpec, SpecError, parse_hf_uri


def test_valid_spec_defaults() -> None:
    spec = MixSpec.parse({"domain_percent": 75, "categories": {"general": 60, "code": 40}})
    assert spec.unit == "examples"
    assert spec.seed == 0
    assert spec.on_small_source == "oversample"
    assert spec.general_percent == 25
    assert list(spec.active_categories()) == ["code", "general"]


def test_nova_style_name_is_accepted() -> None:
    spec = MixSpec.parse({"customer_data_percent": 80, "categories": {"general": 100}})
    assert spec.domain_percent == 80


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"domain_percent": 75, "categories": {"a": 50, "b": 40}}, "must sum to 100, they sum to 90"),
        ({"domain_percent": 75, "categories": {"a": 110, "b": -10}}, "negative"),
        ({"domain_percent": 75, "categories": {"a": 0, "b": 0}}, "every general category share is 0"),
        ({"domain_percent": 75}, "every general category share is 0"),
        ({"domain_percent": 0, "categories": {"a": 100}}, "domain_percent must be > 0"),
        ({"domain_percent": -5, "categories": {"a": 100}}, "domain_percent must be > 0"),
        ({"domain_percent": 101, "categories": {}}, "<= 100"),
        ({"domain_percent": 100, "categories": {"a": 100}}, "must be 0"),
        ({"domain_percent": 75, "categories": {"a": 100}, "unit": "words"}, "unit"),
        ({"domain_percent": 75, "categories": {"a": 100}, "total": 0}, "total"),
        ({"domain_percent": 75, "categories": {"a": 100}, "colour": "red"}, "colour"),
    ],
)
def test_invalid_specs_fail_with_one_clear_line(data: dict, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        MixSpec.parse(data)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_all_domain_spec_needs_no_categories() -> None:
    assert MixSpec.parse({"domain_percent": 100}).active_categories() == {}
    assert MixSpec.parse({"domain_percent": 100, "categories": {"a": 0}}).active_categories() == {}


def test_unknown_category_names_the_known_ones() -> None:
    spec = MixSpec.parse({"domain_percent": 75, "categories": {"general": 50, "poetry": 50}})
    with pytest.raises(
        SpecError, match=r"unknown general category 'poetry'; the catalog knows: code, general"
    ):
        spec.check_categories(["general", "code"])


def test_spec_loads_from_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("domain_percent: 75\ncategories:\n  general: 100\nseed: 4\n")
    (tmp_path / "spec.json").write_text(
        '{"domain_percent": 60, "categories": {"general": 100}, "unit": "tokens"}'
    )
    assert MixSpec.load(str(tmp_path / "spec.yaml")).seed == 4
    assert MixSpec.load(str(tmp_path / "spec.json")).unit == "tokens"


def test_unreadable_spec_files_give_one_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        MixSpec.load(str(tmp_path / "missing.yaml"))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        MixSpec.load(str(tmp_path / "broken.json"))


def test_catalog_loads_yaml_and_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(
        "sources:\n"
        "  - {name: rehearsal, category: general, uri: data/rehearsal.jsonl, format: prepared, license: MIT}\n"
        "  - {name: remote, category: code, uri: 's3://bucket/code.csv', mapping: {question: q, answer: a}}\n"
        "  - {name: hub, category: code, uri: 'hf://owner/set:cfg/validation', records: 100}\n"
    )
    catalog = Catalog.load(str(tmp_path / "catalog.yaml"))
    assert catalog.categories == ["code", "general"]
    rehearsal, remote, hub = catalog.sources
    assert rehearsal.uri == str(tmp_path / "data" / "rehearsal.jsonl")
    assert rehearsal.licence == "MIT"
    assert rehearsal.is_prepared
    assert remote.uri == "s3://bucket/code.csv"
    assert hub.is_hf
    assert [s.name for s in catalog.by_category()["code"]] == ["remote", "hub"]


def test_catalog_relative_paths_resolve_against_an_s3_catalog() -> None:
    catalog = Catalog.parse(
        {"sources": [{"name": "a", "category": "g", "uri": "../data/a.jsonl"}]},
        base_uri="s3://bucket/catalogs/main.yaml",
    )
    assert catalog.sources[0].uri == "s3://bucket/data/a.jsonl"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "sources": [
                    {"name": "a", "category": "g", "uri": "x"},
                    {"name": "a", "category": "g", "uri": "y"},
                ]
            },
            "appears twice",
        ),
        ({"sources": [{"name": "a b", "category": "g", "uri": "x"}]}, "may only use"),
        ({"sources": [{"name": "a", "category": "g", "uri": "x", "format": "xml"}]}, "format"),
        ({"sources": [{"name": "a", "category": "g"}]}, "uri"),
        ({"sources": [{"name": "a", "category": "g", "uri": "hf://"}]}, "hf://"),
        ("just a string", "mapping"),
    ],
)
def test_invalid_catalogs_fail_with_one_line(data: object, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        Catalog.parse(data)


def test_hf_uri_parts() -> None:
    assert parse_hf_uri("hf://owner/name").model_dump() == {
        "dataset": "owner/name",
        "config": None,
        "split": "train",
    }
    assert parse_hf_uri("hf://owner/name:cfg/test").model_dump() == {
        "dataset": "owner/name",
        "config": "cfg",
        "split": "test",
    }
    assert parse_hf_uri("hf://squad:plain_text").split == "train"
    with pytest.raises(CatalogError):
        parse_hf_uri("hf://a/b/c/d")
