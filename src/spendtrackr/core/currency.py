"""ISO 4217 currencies and rounding of amounts to their minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

# Active ISO 4217 codes with their minor units (digits after the point). Codes not listed have 2.
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
    "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP "
    "LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR "
    "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN "
    "SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR "
    "ZMW ZWG"
)
MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_ZERO.split(), 0),
    **dict.fromkeys(_TWO.split(), 2),
    **dict.fromkeys(_THREE.split(), 3),
    **dict.fromkeys(_FOUR.split(), 4),
}


def _check_currency(value: str) -> str:
    code = value.upper()
    if code not in MINOR_UNITS:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return code


CurrencyCode = Annotated[str, AfterValidator(_check_currency)]


# Each code's minor unit as the exponent `Decimal.quantize` takes: every amount a response
# shows passes through `quantize`, and building the exponent cost as much as the rounding.
_EXPONENTS: dict[str, Decimal] = {
    code: Decimal(1).scaleb(-units) for code, units in MINOR_UNITS.items()
}


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit (half up, as receipts print it)."""
    return amount.quantize(_EXPONENTS[currency], rounding=ROUND_HALF_UP)


def _decimal_from_json(value: object) -> object:
    # A JSON float such as 0.30000000000000004 arrives as a Python float; going through its
    # shortest repr gives the decimal the client meant, never its binary expansion.
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


JsonDecimal = Annotated[Decimal, BeforeValidator(_decimal_from_json)]


def plain(amount: Decimal) -> str:
    """A decimal string without an exponent: Decimal's own text of 1e2 is "1E+2"."""
    return f"{amount:f}"


# For amounts kept as given (not rounded to a currency): stored and shown as plain decimals.
PlainText = PlainSerializer(plain, return_type=str, when_used="json")
