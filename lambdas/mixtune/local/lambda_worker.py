"""`python -m mixtune.local.lambda_worker HANDLER`: run one Lambda invoke in this process.

Reads the event as JSON on stdin and prints the result (or the Lambda error payload) as
the last line of stdout; exit code 1 marks a function error.
"""

from __future__ import annotations

import json
import os
import sys

from mixtune.local.invoke import LambdaContext, call_handler, error_payload


def main() -> int:
    handler = sys.argv[1]
    event = json.loads(sys.stdin.read() or "{}")
    context = LambdaContext(function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", handler))
    try:
        result = call_handler(handler, {}, event, context)
    except Exception as exc:
        print(json.dumps(error_payload(exc)))
        return 1
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
