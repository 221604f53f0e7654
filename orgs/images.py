"""Uploaded organization logos: validated as real images, re-encoded, never stored as uploaded."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP"}
LOGO_SIZE = 256
MAX_PIXELS = 25_000_000


def logo_process(upload: UploadedFile) -> ContentFile:
    """Check that `upload` is a PNG, JPEG or WebP within the size limit; return it as a square-bounded PNG.

    Re-encoding drops metadata and anything smuggled after the image data.
    """
    max_bytes = settings.ORGANIZATION_LOGO_MAX_BYTES
    if upload.size is not None and upload.size > max_bytes:
        raise ValidationError(f"The logo is too large: at most {max_bytes // 1024} KB.")
    try:
        upload.seek(0)
        with Image.open(upload) as probe:
            image_format = probe.format
            width, height = probe.size
            probe.verify()
        if image_format not in ALLOWED_FORMATS:
            raise ValidationError("The logo must be a PNG, JPEG or WebP image.")
        if width * height > MAX_PIXELS:
            raise ValidationError("The logo's dimensions are too large.")
        upload.seek(0)
        with Image.open(upload) as image:
            image.load()
            converted = image.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValidationError("The logo must be a valid PNG, JPEG or WebP image.") from error
    converted.thumbnail((LOGO_SIZE, LOGO_SIZE))
    buffer = io.BytesIO()
    converted.save(buffer, format="PNG", optimize=True)
    return ContentFile(buffer.getvalue(), name="logo.png")
