"""Runs one Lambda invocation of a Python handler, as the Lambda runtime does:
    python python.py CODE_DIR HANDLER   (event on stdin, as JSON)
HANDLER is "module.function". The result is written to stdout as one JSON line after the
marker line: {"result": ...} or {"error": {errorType, errorMessage}}."""

import importlib
import json
import sys

MARKER = "\0authedapi-rig-result\0"


def main() -> None:
    code_dir, handler = sys.argv[1], sys.argv[2]
    sys.path.insert(0, code_dir)
    module_name, _, function = handler.rpartition(".")
    try:
        event = json.load(sys.stdin)
        fn = getattr(importlib.import_module(module_name), function)
        outcome = {"result": fn(event, None)}
    except Exception as error:  # noqa: BLE001 - reported as Lambda reports it
        outcome = {"error": {"errorType": type(error).__name__, "errorMessage": str(error)}}
    sys.stdout.write(f"\n{MARKER}\n{json.dumps(outcome)}\n")


main()
