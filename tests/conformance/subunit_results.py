"""Reads a subunit v2 stream on stdin and prints one JSON object per test on stdout.

Runs with the Tempest venv's Python (python-subunit and testtools live there,
not in the project's venv): `tempest_run.py` feeds it `tempest run --subunit`.
Each line: {"id", "status", "reason", "details"}; status is subunit's
(success, fail, skip, xfail, uxsuccess); reason is the skip reason or the last
line of the failure's traceback; details holds the attachments as text.
"""

from __future__ import annotations

import json
import sys

import subunit
import testtools


def main() -> None:
    tests: list[dict[str, object]] = []

    def on_test(test: dict[str, object]) -> None:
        details = {
            name: content.as_text()
            for name, content in dict(test["details"]).items()  # type: ignore[call-overload]
            if content.content_type.type == "text"
        }
        status = str(test["status"])
        reason = details.get("reason", "")
        if status in ("fail", "uxsuccess") and not reason:
            reason = _exception_line(details.get("traceback", ""))
        tests.append({"id": test["id"], "status": status, "reason": reason, "details": details})

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()
    for test in tests:
        print(json.dumps(test))


def _exception_line(traceback: str) -> str:
    """The traceback's last `Class: message` line (jsonschema's error is followed by
    a dump of the schema and the instance)."""
    found = ""
    for line in traceback.splitlines():
        head = line.split(":", 1)[0]
        if line[:1].isalpha() and head.replace(".", "").replace("_", "").isalnum():
            found = line
    return found[:500]


if __name__ == "__main__":
    main()
