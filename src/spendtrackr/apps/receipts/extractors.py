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
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationError

from spendtrackr.apps.receipts.parsing import parse_text
from spendtrackr.apps.receipts.schemas import ExtractedReceipt, LineItem
from spendtrackr.core.config import Settings, get_settings
from spendtrackr.core.sandbox import Bounds, LimitExceeded, run_bounded

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


@dataclass(frozen=True, slots=True)
class FileBounds:
    """What reading one file may take (settings `ocr_max_*`)."""

    pixels: int
    pdf_pages: int
    decoded_bytes: int
    process: Bounds

    @classmethod
    def from_settings(cls, settings: Settings) -> FileBounds:
        return cls(
            pixels=settings.ocr_max_pixels,
            pdf_pages=settings.ocr_max_pdf_pages,
            decoded_bytes=settings.ocr_max_decoded_bytes,
            process=Bounds(
                memory_bytes=settings.ocr_max_memory_mb << 20,
                cpu_seconds=settings.ocr_max_seconds,
                wall_seconds=settings.ocr_max_seconds + 10,
            ),
        )


def _pdf_text(data: bytes, bounds: FileBounds) -> str:
    from pypdf import PdfReader, apply_configuration  # on first use, like every file library
    from pypdf.errors import LimitReachedError, PdfReadError

    limit = bounds.decoded_bytes
    try:
        with apply_configuration(
            maximum_declared_stream_length=limit,
            array_based_stream_maximum_output_length=limit,
            lzw_maximum_output_length=limit,
            run_length_maximum_output_length=limit,
            zlib_maximum_output_length=limit,
        ):
            return _pdf_pages_text(PdfReader(io.BytesIO(data)), bounds)
    except LimitReachedError:
        raise ExtractionFailed(
            f"the PDF inflates past {bounds.decoded_bytes} bytes (a decompression bomb?)"
        ) from None
    except (PdfReadError, ValueError, KeyError) as exc:
        raise ExtractionFailed(f"unreadable PDF: {type(exc).__name__}") from None


def _pdf_pages_text(reader: Any, bounds: FileBounds) -> str:
    if len(reader.pages) > bounds.pdf_pages:
        raise ExtractionFailed(
            f"the PDF has {len(reader.pages)} pages; a receipt may have {bounds.pdf_pages}"
        )
    text: list[str] = []
    for page in reader.pages[:10]:
        text.append(page.extract_text() or "")
        if sum(map(len, text)) > bounds.decoded_bytes:
            raise ExtractionFailed("the PDF's text is larger than a receipt's can be")
    return "\n".join(text)


def _image_text(data: bytes, tesseract: str | None, bounds: FileBounds) -> str:
    if tesseract is None:
        raise ExtractionFailed("image OCR needs the tesseract binary, which is not installed")
    import pytesseract
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # checked below, with the reason in the failure
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > bounds.pixels:
                raise ExtractionFailed(
                    f"the image is {width}x{height} pixels; a receipt may have {bounds.pixels}"
                )
            text: Any = pytesseract.image_to_string(
                image.convert("L"), timeout=bounds.process.cpu_seconds
            )
    except OSError as exc:
        raise ExtractionFailed(f"unreadable image: {exc}") from None
    return str(text)


def read_local(data: bytes, content_type: str, tesseract: str | None, bounds: FileBounds) -> str:
    """The file's text; runs in the bounded child process."""
    if content_type == "application/pdf":
        return _pdf_text(data, bounds)
    return _image_text(data, tesseract, bounds)


class LocalExtractor:
    """No network, no key: the PDF text layer, or Tesseract for images (when installed), read
    in a child process within `bounds` (core/sandbox.py)."""

    name = "local"

    def __init__(self, bounds: FileBounds | None = None) -> None:
        self.tesseract = shutil.which("tesseract")
        self.bounds = bounds or FileBounds.from_settings(get_settings())

    def extract(self, data: bytes, content_type: str) -> ExtractedReceipt:
        try:
            text = run_bounded(
                read_local,
                data,
                content_type,
                self.tesseract,
                self.bounds,
                bounds=self.bounds.process,
            )
        except LimitExceeded as exc:
            raise ExtractionFailed(f"reading the file {exc}") from None
        if not text.strip():
            raise ExtractionFailed("no readable text on the receipt")
        result = parse_text(text)
        if result.total is None:
            raise ExtractionFailed("no total found on the receipt")
        return result


def build_extractor(settings: Settings) -> Extractor:
    if settings.gemini_api_key is not None:
        return GeminiExtractor(settings)
    return LocalExtractor(FileBounds.from_settings(settings))
