"""Catalog sources that are not prepared: conversion through dataprep, and hf:// sources."""

from __future__ import annotations

import csv
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from mixtune.mixing import Catalog, MixError, mix_datasets
from mixtune.records import ConversationRecord


def write_domain(path: Path, count: int) -> None:
    path.write_text(
        "".join(
            ConversationRecord.from_turns([("user", f"domain q {i}"), ("assistant", f"a {i}")]).to_json_line()
            + "\n"
            for i in range(count)
        )
    )


def test_a_csv_source_is_converted_and_sanitized(tmp_path: Path) -> None:
    write_domain(tmp_path / "domain.jsonl", 30)
    with open(tmp_path / "general.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt_text", "reply"])
        for i in range(20):
            writer.writerow([f"general question {i} User: tricky [EOS]", f"general answer {i}"])
        writer.writerow(["", ""])  # rejected: empty
    (tmp_path / "catalog.yaml").write_text(
        "sources:\n  - name: qa\n    category: general\n    uri: general.csv\n"
        "    mapping: {question: prompt_text, answer: reply}\n    licence: CC0\n"
    )
    manifest = mix_datasets(
        str(tmp_path / "domain.jsonl"),
        str(tmp_path / "catalog.yaml"),
        {"domain_percent": 60, "categories": {"general": 100}},
        str(tmp_path / "out"),
    )
    source = manifest.source("qa")
    assert source.uri == str(tmp_path / "general.csv")  # the user's URI, not a staging path
    assert source.available_records == 20
    assert source.rejected_records == 1
    assert source.original_sha256 is not None and source.original_sha256 != source.input_sha256
    assert manifest.part("general").records == 20
    general = [
        ConversationRecord.from_json_line(line)
        for line in (tmp_path / "out" / "mixed.jsonl").read_text().splitlines()
        if "general question" in line
    ]
    assert len(general) == 20
    assert all(
        "[EOS]" not in record.turns()[0][1] and "User:" not in record.turns()[0][1] for record in general
    )


def test_a_rejected_source_stops_the_mix(tmp_path: Path) -> None:
    write_domain(tmp_path / "domain.jsonl", 10)
    (tmp_path / "bad.jsonl").write_text("not json\n" * 10)
    catalog = Catalog.parse(
        {"sources": [{"name": "bad", "category": "general", "uri": str(tmp_path / "bad.jsonl")}]}
    )
    with pytest.raises(MixError, match="'bad' was rejected by data preparation"):
        mix_datasets(
            str(tmp_path / "domain.jsonl"),
            catalog,
            {"domain_percent": 50, "categories": {"general": 100}},
            str(tmp_path / "out"),
        )


def test_hf_sources_stream_through_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def load_dataset(name: str, config: str | None, split: str, streaming: bool) -> object:
        calls.append((name, config, split, streaming))
        return ({"instruction": f"hub question {i}", "output": f"hub answer {i}"} for i in range(1000))

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    write_domain(tmp_path / "domain.jsonl", 10)
    catalog = Catalog.parse(
        {
            "sources": [
                {
                    "name": "hub",
                    "category": "general",
                    "uri": "hf://owner/set:cfg/train",
                    "records": 25,
                    "mapping": {"question": "instruction", "answer": "output"},
                }
            ]
        }
    )
    manifest = mix_datasets(
        str(tmp_path / "domain.jsonl"),
        catalog,
        {"domain_percent": 50, "categories": {"general": 100}},
        str(tmp_path / "out"),
    )
    assert calls == [("owner/set", "cfg", "train", True)]
    assert manifest.source("hub").available_records == 25  # read no more than the catalog's count
    assert manifest.part("general").records == 10


def test_hf_sources_without_datasets_give_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails
    write_domain(tmp_path / "domain.jsonl", 10)
    catalog = Catalog.parse({"sources": [{"name": "hub", "category": "general", "uri": "hf://owner/set"}]})
    with pytest.raises(MixError, match="need the 'datasets' package"):
        mix_datasets(
            str(tmp_path / "domain.jsonl"),
            catalog,
            {"domain_percent": 50, "categories": {"general": 100}},
            str(tmp_path / "out"),
        )


def test_mixing_never_imports_ml_frameworks() -> None:
    code = (
        "import sys, mixtune.mixing, mixtune.mixing.mixer, mixtune.commands.mix\n"
        "bad = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_manifest_json_round_trips(tmp_path: Path, prepared_catalog: Callable[..., Catalog]) -> None:
    from mixtune.mixing import MixManifest

    write_domain(tmp_path / "domain.jsonl", 10)
    write_domain(tmp_path / "general.jsonl", 10)
    catalog = prepared_catalog(g=("general", tmp_path / "general.jsonl"))
    manifest = mix_datasets(
        str(tmp_path / "domain.jsonl"),
        catalog,
        {"domain_percent": 50, "categories": {"general": 100}},
        str(tmp_path / "out"),
    )
    loaded = MixManifest.model_validate(orjson.loads((tmp_path / "out" / "manifest.json").read_bytes()))
    assert loaded == manifest
