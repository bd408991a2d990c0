"""`mixtune prepare`: exit codes, one-line errors, the summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mixtune.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["prepare", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_accepted_dataset_exits_0_with_a_summary(tmp_path: Path, capsys) -> None:
    src = tmp_path / "qa.csv"
    src.write_text("ask,reply\nhi,hello\nUser: yo,sup\n")
    code, out, err = run(
        capsys,
        str(src),
        "--map",
        "question=ask,answer=reply",
        "--system",
        "Be brief.",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 0, err
    assert "2 in: 2 kept (1 sanitized), 0 rejected" in out
    assert "repaired  role:user x1" in out
    assert out.strip().endswith("ACCEPTED")
    first = json.loads((tmp_path / "o" / "prepared.jsonl").read_text().splitlines()[0])
    assert first["system"] == [{"text": "Be brief."}]


def test_rejected_dataset_exits_1(tmp_path: Path, capsys) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text('{"question": "q", "answer": ""}\n{"question": "r", "answer": "s"}\n')
    code, out, _ = run(capsys, str(src), "--out", str(tmp_path / "o"), "--strict")
    assert code == 1
    assert "line 1: empty_text" in out
    assert "REJECTED: strict mode" in out


def test_max_tokens_and_json_output(tmp_path: Path, capsys) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text('{"question": "' + "x" * 100 + '", "answer": "a"}\n{"question": "q", "answer": "a"}\n')
    code, out, _ = run(capsys, str(src), "--out", str(tmp_path / "o"), "--max-tokens", "10", "--json")
    assert code == 1
    assert json.loads(out)["rule_counts"] == {"max_tokens": 1}


@pytest.mark.parametrize(
    ("content", "argv", "expected"),
    [
        (b"", [], "the file is empty"),
        (b"\x00\x01\x02\x03", [], "NUL bytes"),
        (b"a,b\n1,2\n", ["--map", "question=a,answer=nope"], "line 1: mapped column 'nope'"),
        (b"a,b\n1,2\n", ["--map", "question"], "--map expects ROLE=COLUMN"),
        (b"a,b\n1,2\n", ["--map", "bogus=a"], "unknown role 'bogus'"),
        (b"a,b\n1,2\n", ["--eval-share", "2"], "eval_share"),
    ],
)
def test_usage_errors_exit_2_with_one_line_naming_the_file(
    tmp_path: Path, capsys, content, argv, expected
) -> None:
    src = tmp_path / "d.csv"
    src.write_bytes(content)
    code, _out, err = run(capsys, str(src), "--out", str(tmp_path / "o"), *argv)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_input_file_exits_2(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, str(tmp_path / "absent.jsonl"))
    assert code == 2 and "absent.jsonl: no such file" in err


@pytest.mark.shared_data
def test_cli_on_banking77_as_a_user_runs_it(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "b77"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mixtune.cli",
            "prepare",
            str(shared_data / "banking77" / "train.csv"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "classification (text=text, label=category)" in result.stdout
    assert "10,003 in: 10,003 kept" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["kept"] + report["counts"]["rejected"] == 10_003


def test_help_states_the_max_tokens_default_and_how_to_turn_it_off(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default 32,768" in text and "--max-tokens 0 turns the limit off" in text


def test_default_max_tokens_rejects_a_huge_record_and_0_keeps_it(tmp_path: Path, capsys) -> None:
    src = tmp_path / "d.jsonl"
    rows = [{"question": f"q{i}", "answer": "a"} for i in range(30)] + [
        {"question": "w " * 70_000, "answer": "a"}
    ]
    src.write_text("".join(json.dumps(row) + "\n" for row in rows))
    _, out, _ = run(capsys, str(src), "--out", str(tmp_path / "o"))
    assert "line 31: max_tokens: 35001 tokens > max_tokens 32768" in out
    assert "records over 1k / 2k / 4k / 8k tokens: 0 / 0 / 0 / 0" in out
    _, out, _ = run(capsys, str(src), "--out", str(tmp_path / "p"), "--max-tokens", "0", "--json")
    report = json.loads(out)
    assert report["counts"]["kept"] == 31 and report["options"]["max_tokens"] is None
    assert report["tokens"]["over"] == {"1024": 1, "2048": 1, "4096": 1, "8192": 1}
