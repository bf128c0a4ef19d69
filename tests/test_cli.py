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
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/categories", headers=headers).json()["total"] == 10  # starter workspace

    second = runner.invoke(cli, args, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert second.exit_code == 0
    assert "already exists; nothing changed" in second.output


def test_create_superuser_without_a_starter_workspace(client: TestClient, cli_env: None) -> None:
    email = unique_email()
    args = ["create-superuser", "--email", email, "--company", "Bare", "--full-name", "Root"]
    result = CliRunner().invoke(
        cli, [*args, "--no-starter-workspace"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    headers = {"Authorization": f"Bearer {login(client, email)['access_token']}"}
    assert client.get("/categories", headers=headers).json()["total"] == 0


def test_create_superuser_rejects_short_password(cli_env: None) -> None:
    result = CliRunner().invoke(
        cli,
        ["create-superuser", "--email", unique_email(), "--company", "X", "--full-name", "Y"],
        input="short\nshort\n",
    )
    assert result.exit_code == 2
    assert "password" in result.output
