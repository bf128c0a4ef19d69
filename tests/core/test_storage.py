from __future__ import annotations

import io
from pathlib import Path

import pytest

from spendtrackr.core.storage import LocalStorage


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../etc/passwd",
        "/etc/passwd",
        "a//b",
        "a/./b/..",
        "name with space",
        "a\\b",
        "",
        "ok/",
    ],
)
def test_keys_cannot_leave_the_storage_folder(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "files")
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.put(key, io.BytesIO(b"x"))
    assert not (tmp_path / "escape").exists()


def test_put_is_atomic_and_content_addressed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    assert storage.put("c0ffee/ab/abc", io.BytesIO(b"first")) is True
    assert storage.put("c0ffee/ab/abc", io.BytesIO(b"second")) is False  # kept as it was
    assert storage.read("c0ffee/ab/abc") == b"first"
    assert [p.name for p in (tmp_path / "c0ffee" / "ab").iterdir()] == ["abc"]  # no temp left
    assert b"".join(storage.iter_chunks("c0ffee/ab/abc", chunk_size=2)) == b"first"
    storage.delete("c0ffee/ab/abc")
    assert not storage.exists("c0ffee/ab/abc")
