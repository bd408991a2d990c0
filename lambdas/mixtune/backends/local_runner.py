"""Wrapper the local backend starts: run a command, then record its exit code in a file.

``python -m mixtune.backends.local_runner JOB_DIR -- COMMAND...`` runs COMMAND with its output
appended to ``JOB_DIR/job.log`` and writes the exit code to ``JOB_DIR/exit_code`` (atomically),
so that any later process, not only the one that launched the job, can read the outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

EXIT_FILE = "exit_code"
LOG_FILE = "job.log"


def write_exit_code(job_dir: Path, code: int) -> None:
    tmp = job_dir / f"{EXIT_FILE}.tmp"
    tmp.write_text(f"{code}\n")
    os.replace(tmp, job_dir / EXIT_FILE)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m mixtune.backends.local_runner JOB_DIR -- COMMAND...", file=sys.stderr)
        return 2
    job_dir, command = Path(args[0]), args[2:]
    with open(job_dir / LOG_FILE, "ab") as log:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def forward(signum: int, _frame: object) -> None:
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        code = child.wait()
    write_exit_code(job_dir, code)
    return code


if __name__ == "__main__":
    sys.exit(main())
