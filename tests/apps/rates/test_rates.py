"""Exchange rates: the ECB's file and a plain CSV imported by the CLI, a company's own rates,
the lookup over weekends and holidays, and crossing through the euro, exactly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from spendtrackr.apps.rates import parsing
from spendtrackr.cli import app as cli
from tests.factories import create_user, signup

# The ECB's eurofxref-hist.csv as published: newest first, a trailing comma, N/A for a
# currency that had no rate (here CYP, long gone), units per 1 EUR. Rates of 2030, so that no
# other test's rates are nearer.
ECB = """Date,USD,JPY,GBP,CYP,
2030-01-08,1.0950,159.10,0.8610,N/A,
2030-01-07,1.0940,158.90,0.8600,N/A,
2030-01-04,1.0921,158.54,0.8590,N/A,
"""


def test_the_ecb_file_and_a_plain_csv_parse_exactly() -> None:
    rates = list(parsing.parse(ECB.splitlines()))
    assert len(rates) == 9  # 3 days x USD, JPY, GBP; N/A skipped
    first = rates[0]
    assert (str(first.rate_date), first.base, first.quote, first.rate) == (
        "2030-01-08",
        "EUR",
        "USD",
        Decimal("1.0950"),
    )
    plain = list(parsing.parse(["date,currency,rate", "2030-01-04,CHF,0.93"], base="USD"))
    assert [(p.base, p.quote, p.rate) for p in plain] == [("USD", "CHF", Decimal("0.93"))]
    for bad in (
        ["Day,USD", "x"],
        ["Date,USD", "2030-13-01,1.1"],
        ["Date,USD", "2030-01-01,-1"],
        [],
    ):
        with pytest.raises(parsing.RateFileError):
            list(parsing.parse(bad))


def test_rates_imported_by_the_cli_convert_over_weekends_and_through_the_euro(
    client: TestClient, cli_env: None, tmp_path: Path
) -> None:
    file = tmp_path / "eurofxref-hist.csv"
    file.write_text(ECB)
    result = CliRunner().invoke(cli, ["rates", "import", str(file)])
    assert result.exit_code == 0, result.output
    assert "imported 9 rates over 3 days" in result.output
    again = CliRunner().invoke(cli, ["rates", "import", str(file)])  # replaces, no duplicates
    assert again.exit_code == 0

    admin = signup(client)
    h = admin.headers
    # Saturday 2030-01-05: Friday's rate
    eur_usd = client.get(
        "/exchange-rates/convert?amount=100&from=EUR&to=USD&date=2030-01-05", headers=h
    ).json()
    assert eur_usd == {
        "amount": "100.00",
        "currency": "EUR",
        "converted": "109.21",
        "to": "USD",
        "rate": "1.0921",
        "rate_date": "2030-01-04",
    }
    # The inverse, and a cross rate through the euro (JPY -> GBP), exact to the cent.
    usd_eur = client.get(
        "/exchange-rates/convert?amount=109.21&from=USD&to=EUR&date=2030-01-04", headers=h
    ).json()
    assert usd_eur["converted"] == "100.00"
    jpy_gbp = client.get(
        "/exchange-rates/convert?amount=15854&from=JPY&to=GBP&date=2030-01-04", headers=h
    ).json()
    expected = (Decimal("15854") * (Decimal("0.8590") / Decimal("158.54"))).quantize(
        Decimal("0.01")
    )
    assert jpy_gbp["converted"] == str(expected) == "85.90"
    # No rate within the lookback window: 422 with the reason
    stale = client.get(
        "/exchange-rates/convert?amount=1&from=EUR&to=USD&date=2030-03-01", headers=h
    )
    assert (stale.status_code, stale.json()["code"]) == (422, "no_rate")
    listed = client.get("/exchange-rates?base=EUR&quote=USD", headers=h).json()
    assert [r["date"] for r in listed["items"][:3]] == ["2030-01-08", "2030-01-07", "2030-01-04"]
    assert listed["items"][0]["source"] == "ecb"


def test_a_companys_own_rate_wins_for_that_company_only(client: TestClient) -> None:
    admin = signup(client)
    other = signup(client)
    own = client.post(
        "/exchange-rates",
        json={"date": "2030-02-03", "base": "EUR", "quote": "usd", "rate": "1.2000"},
        headers=admin.headers,
    )
    assert own.status_code == 201, own.text
    assert own.json()["company_rate"] is True
    assert own.json()["quote"] == "USD"
    mine = client.get(
        "/exchange-rates/convert?amount=10&from=EUR&to=USD&date=2030-02-04", headers=admin.headers
    ).json()
    assert (mine["converted"], mine["rate_date"]) == ("12.00", "2030-02-03")
    theirs = client.get(
        "/exchange-rates/convert?amount=10&from=EUR&to=USD&date=2030-02-04", headers=other.headers
    )
    assert theirs.status_code == 422  # no reference rate near that day, and not theirs
    employee = create_user(client, admin)
    for body, status in (
        ({"date": "2030-02-03", "base": "EUR", "quote": "USD", "rate": "1.1"}, 403),
        ({"date": "2030-02-03", "base": "EUR", "quote": "EUR", "rate": "1"}, 422),
        ({"date": "2030-02-03", "base": "EUR", "quote": "USD", "rate": "0"}, 422),
        ({"date": "2030-02-03", "base": "EUR", "quote": "XXQ", "rate": "1.1"}, 422),
    ):
        actor = employee if status == 403 else admin
        response = client.post("/exchange-rates", json=body, headers=actor.headers)
        assert response.status_code == status, (body, response.text)
