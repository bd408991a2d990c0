"""CDK entry point: `npx cdk synth` (cdk.json runs `python infra/app.py`). See docs/infra.md."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a script from any folder: make `infra` (and, without an install, `mixtune`) importable.
_ROOT = Path(__file__).resolve().parents[1]
for _path in (str(_ROOT), str(_ROOT / "lambdas")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
# Node 20 is what this machine has; the notice would drown the synth output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# CDK's built-in CloudFormation rules cost ~10 s per synth; cfn-lint checks the same templates
# in the tests. `CDK_VALIDATION=true make synth` turns them back on. cdk-nag always runs.
os.environ.setdefault("CDK_VALIDATION", "false")

from aws_cdk import App  # noqa: E402

from infra.stacks.service import build_service  # noqa: E402


def main() -> None:
    app = App()
    build_service(app)
    app.synth()


if __name__ == "__main__":
    main()
