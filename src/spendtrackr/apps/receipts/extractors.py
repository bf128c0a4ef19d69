"""Extractors turn a receipt's bytes into an `ExtractedReceipt`, behind one interface.

- `GeminiExtractor`: google-genai, the file as an inline part, structured output into a schema.
- `LocalExtractor`: a PDF's text layer (pypdf), images through Tesseract when it is installed.

An extractor raises `ExtractionFailed` for an answer that will not get better by asking again
(nonsense, nothing readable) and any other exception for what might (time-outs, 5xx): the job
runner retries only the latter.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError

from spendtrackr.apps.receipts.parsing import parse_text
from spendtrackr.apps.receipts.schemas import ExtractedReceipt, LineItem
from spendtrackr.core.config import Settings

logger = logging.getLogger(__name__)


class ExtractionFailed(Exception):
    """The receipt could not be read, and retrying would not change that."""


class Extractor(Protocol):
    name: str

    def extract(self, data: bytes, content_type: str) -> ExtractedReceipt: ...


# --- Gemini -------------------------------------------------------------------------------------

PROMPT = (
    "You read expense receipts. Extract the merchant (vendor), the purchase date (YYYY-MM-DD), "
    "the grand total actually paid, its ISO 4217 currency code, the tax amount, and the line "
    'items. Write amounts as plain decimal strings with a dot ("1234.50"), no symbols or '
    "thousands separators. Use null for anything not printed on the receipt; never guess. Give "
    "your confidence from 0 to 1 for vendor, date and total."
)


class _GeminiLineItem(BaseModel):
    description: str
    amount: str | None = None


class GeminiReceipt(BaseModel):
    """The response schema given to Gemini. Amounts are strings, so no binary float is involved."""

    vendor: str | None = None
    date: str | None = Field(default=None, description="YYYY-MM-DD")
    total: str | None = None
    currency: str | None = Field(default=None, description="ISO 4217 code")
    tax: str | None = None
    line_items: list[_GeminiLineItem] = Field(default_factory=list)
    vendor_confidence: float | None = None
    date_confidence: float | None = None
    total_confidence: float | None = None


_DECIMAL = re.compile(r"^\d{1,13}(\.\d{1,4})?$")


def _money(value: str | None, field: str) -> Decimal | None:
    if value is None or value.strip() == "":
        return None
    cleaned = value.strip()
    if not _DECIMAL.fullmatch(cleaned):
        raise ExtractionFailed(f"{field} is not a decimal amount: {value[:40]!r}")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise ExtractionFailed(f"{field} is not a decimal amount: {value[:40]!r}") from None


def to_extracted(raw: GeminiReceipt) -> ExtractedReceipt:
    """Validate the model's answer as untrusted input."""
    confidence = {
        k: v
        for k, v in (
            ("vendor", raw.vendor_confidence),
            ("date", raw.date_confidence),
            ("total", raw.total_confidence),
        )
        if v is not None
    }
    try:
        return ExtractedReceipt(
            vendor=raw.vendor.strip()[:200] if raw.vendor else None,
            date=raw.date or None,  # a string, validated into a date by the model
            total=_money(raw.total, "total"),
            currency=raw.currency.strip().upper() if raw.currency else None,
            tax=_money(raw.tax, "tax"),
            line_items=[
                LineItem(description=i.description[:300], amount=_money(i.amount, "line item"))
                for i in raw.line_items[:200]
            ],
            confidence=confidence,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ExtractionFailed(f"unusable answer: {where}: {first['msg']}") from None


class GeminiExtractor:
    name = "gemini"

    def __init__(self, settings: Settings) -> None:
        # Imported here: the SDK is heavy and only needed when a key is configured.
        from google import genai
        from google.genai import types

        assert settings.gemini_api_key is not None
        self._types = types
        self._model = settings.gemini_model
        http_options = types.HttpOptions(
            base_url=settings.gemini_base_url,
            timeout=int(settings.gemini_timeout_seconds * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(
            api_key=settings.gemini_api_key.get_secret_value(), http_options=http_options
        )

    def extract(self, data: bytes, content_type: str) -> ExtractedReceipt:
        types = self._types
        response = self._client.models.generate_content(
            model=self._model,
            contents=[types.Part.from_bytes(data=data, mime_type=content_type), PROMPT],
            config=types.GenerateContentConfig(
                response_mime_type="application/json",
                response_schema=GeminiReceipt,
                temperature=0,
            ),
        )
        text = response.text
        if not text:
            raise ExtractionFailed("the model returned no answer")
        try:
            raw = GeminiReceipt.model_validate(json.loads(text))
        except (ValueError, ValidationError):
            raise ExtractionFailed("the model's answer is not the requested JSON") from None
        return to_extracted(raw)


# --- local ------------------------------------------------------------------------------------


class LocalExtractor:
    """No network, no key: the PDF text layer, or Tesseract for images (when installed)."""

    name = "local"

    def __init__(self) -> None:
        self.tesseract = shutil.which("tesseract")

    def extract(self, data: bytes, content_type: str) -> ExtractedReceipt:
        text = self._pdf_text(data) if content_type == "application/pdf" else self._ocr(data)
        if not text.strip():
            raise ExtractionFailed("no readable text on the receipt")
        result = parse_text(text)
        if result.total is None:
            raise ExtractionFailed("no total found on the receipt")
        return result

    @staticmethod
    def _pdf_text(data: bytes) -> str:
        from pypdf import PdfReader  # on first use, like every file library here
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(io.BytesIO(data))
            return "\n".join((page.extract_text() or "") for page in reader.pages[:10])
        except (PdfReadError, ValueError, KeyError) as exc:
            raise ExtractionFailed(f"unreadable PDF: {type(exc).__name__}") from None

    def _ocr(self, data: bytes) -> str:
        if self.tesseract is None:
            raise ExtractionFailed("image OCR needs the tesseract binary, which is not installed")
        import pytesseract
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            text: Any = pytesseract.image_to_string(image.convert("L"), timeout=60)
        return str(text)


def build_extractor(settings: Settings) -> Extractor:
    if settings.gemini_api_key is not None:
        return GeminiExtractor(settings)
    return LocalExtractor()
