from __future__ import annotations

import io
import json
import logging

import pytest

from spendtrackr.core.logging import configure_logging, request_id_var


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _line(monkeypatch: pytest.MonkeyPatch, stderr: io.StringIO, json_logs: bool | None) -> str:
    monkeypatch.setattr("sys.stderr", stderr)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", json_logs=json_logs)
        token = request_id_var.set("req-123")
        try:
            logging.getLogger("spendtrackr.access").info(
                "request", extra={"method": "GET", "status": 200}
            )
        finally:
            request_id_var.reset(token)
    finally:
        root.handlers[:], root.level = handlers, level
    return stderr.getvalue().strip()


def test_a_terminal_gets_key_value_lines_and_anything_else_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = _line(monkeypatch, _Terminal(), None)
    assert text.endswith("INFO    spendtrackr.access [req-123] request method=GET status=200")
    entry = json.loads(_line(monkeypatch, io.StringIO(), None))
    assert entry["request_id"] == "req-123"
    assert (entry["method"], entry["status"]) == ("GET", 200)
    assert "{" in _line(monkeypatch, _Terminal(), True)  # LOG_JSON=true wins over the terminal
