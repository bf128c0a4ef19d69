"""Receipt files made on the fly: a text PDF (fpdf2), images (Pillow), and hostile files."""

from __future__ import annotations

import io

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

LINES = [
    "Blue Bottle Coffee",
    "Date: 2026-11-20",
    "Latte 4.50",
    "Croissant 3.25",
    "Tax 0.62",
    "TOTAL $8.37",
]


def pdf_receipt(lines: list[str] | None = None) -> bytes:
    pdf = FPDF(format=(105, 148))
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for line in lines or LINES:
        pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def image_receipt(fmt: str = "PNG", lines: list[str] | None = None) -> bytes:
    image = Image.new("RGB", (900, 80 + 70 * len(lines or LINES)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    for i, line in enumerate(lines or LINES):
        draw.text((40, 40 + 70 * i), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200
FAKE_PDF = b"%PDF-1.7\n" + b"MZ\x90\x00 this is really a Windows executable" * 20
