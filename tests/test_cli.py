from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from spendtrackr.cli import app as cli
from tests.factories import PASSWORD, login, unique_email


def test_create_superuser_is_idempotent(cli_env: None, client: TestClient) -> None:
    email = unique_email("root")
    args = ["create-superuser", "--email", email, "--company", "Umbrella", "--full-name", "Root"]
    runner = CliRunner()
    first = runner.invoke(cli, args, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert first.exit_code == 0, first.output
    assert "created company Umbrella" in first.output
    tokens = login(client, email)
    me = client.get(
        "/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    assert me["role"] == "admin"

    second = runner.invoke(cli, args, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert second.exit_code == 0
    assert "already exists; nothing changed" in second.output


def test_create_superuser_rejects_short_password(cli_env: None) -> None:
    result = CliRunner().invoke(
        cli,
        ["create-superuser", "--email", unique_email(), "--company", "X", "--full-name", "Y"],
        input="short\nshort\n",
    )
    assert result.exit_code == 2
    assert "password" in result.output
