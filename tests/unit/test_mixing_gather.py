"""Reordering lines by byte ranges: pyarrow and the pure-Python path give the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixtune.mixing import Catalog, mix_datasets
from mixtune.mixing import gather as mixing_gather
from mixtune.mixing import lines as mixing_lines
from mixtune.mixing.gather import gather_lines
from mixtune.mixing.lines import line_bounds
from mixtune.records import ConversationRecord

BACKENDS = [pytest.param(True, id="pyarrow"), pytest.param(False, id="python")]


def expected(lines: list[bytes], order: list[int]) -> bytes:
    return b"".join(lines[i] + b"\n" for i in order)


@pytest.mark.parametrize("use_pyarrow", BACKENDS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\n", b"x")), min_size=1, max_size=30
    ),
    data=st.data(),
)
def test_gather_returns_the_lines_in_the_order_given(
    use_pyarrow: bool, lines: list[bytes], data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    if use_pyarrow and mixing_gather.pa is None:
        pytest.skip("pyarrow is not installed")
    monkeypatch.setattr(mixing_gather, "USE_PYARROW", use_pyarrow)
    # Repeats and omissions allowed, as oversampling and sampling need.
    order = data.draw(st.lists(st.integers(0, len(lines) - 1), max_size=40))
    block = b"".join(line + b"\n" for line in lines)
    result = gather_lines(block, line_bounds(block), np.asarray(order, dtype=np.int64))
    assert bytes(result) == expected(lines, order)


@pytest.mark.parametrize("use_pyarrow", BACKENDS)
def test_gather_reads_only_between_the_first_and_last_bound(
    use_pyarrow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if use_pyarrow and mixing_gather.pa is None:
        pytest.skip("pyarrow is not installed")
    monkeypatch.setattr(mixing_gather, "USE_PYARROW", use_pyarrow)
    block = b"skip\nb1\nc22\nd333\n"
    bounds = line_bounds(block)[1:]  # the lines after the first
    assert bytes(gather_lines(block, bounds, np.array([2, 0, 1, 0]))) == b"d333\nb1\nc22\nb1\n"


def test_a_mix_is_byte_identical_with_and_without_pyarrow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prepared_catalog: Callable[..., Catalog]
) -> None:
    if mixing_gather.pa is None:
        pytest.skip("pyarrow is not installed")
    for name, count in (("domain", 400), ("general", 150)):
        (tmp_path / f"{name}.jsonl").write_text(
            "".join(
                ConversationRecord.from_turns(
                    [("user", f"{name} {i} é" * (i % 3 + 1)), ("assistant", "ok")]
                ).to_json_line()
                + "\n"
                for i in range(count)
            )
        )
    catalog = prepared_catalog(g=("general", tmp_path / "general.jsonl"))
    spec = {"domain_percent": 60, "categories": {"general": 100}, "seed": 5, "on_small_source": "oversample"}
    # Many small buckets, some held and some spilled, many blocks per file.
    monkeypatch.setattr(mixing_lines, "BUCKET_BYTES", 4000)
    monkeypatch.setattr(mixing_lines, "BLOCK_BYTES", 3000)
    monkeypatch.setattr(mixing_lines, "MEMORY_BYTES", 40_000)
    outputs = []
    for use_pyarrow in (True, False):
        monkeypatch.setattr(mixing_gather, "USE_PYARROW", use_pyarrow)
        out = tmp_path / f"out-{use_pyarrow}"
        manifest = mix_datasets(str(tmp_path / "domain.jsonl"), catalog, spec, str(out))
        assert manifest.source("g").oversampled
        outputs.append((out / "mixed.jsonl").read_bytes())
    assert outputs[0] == outputs[1]
