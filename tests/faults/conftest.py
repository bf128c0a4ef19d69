from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spendtrackr.core.config import Settings


@pytest.fixture
def api_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """The environment of an API process on the suite's database, like production but cheap."""
    return {
        "DATABASE_URL": settings.database_url,
        "JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        "RATE_LIMIT_API_USER": "1000000/minute",
        "RATE_LIMIT_LOGIN_IP": "1000000/minute",
        "RATE_LIMIT_LOGIN_EMAIL": "1000000/minute",
        "RATE_LIMIT_SIGNUP_IP": "1000000/minute",
        "STORAGE_PATH": str(tmp_path / "files"),
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
        "ENVIRONMENT": "test",
        "REDIS_URL": "",
    }


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "api.log"
    path.touch()
    return path
