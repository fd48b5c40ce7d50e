"""Response headers for files of personal data sent to a browser (exports, rejected import rows,
personal-data requests)."""

# Personal data: not kept by browsers or proxies, and never reinterpreted as another type.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def attachment_headers(filename: str) -> dict[str, str]:
    """Headers that make a browser save the response as `filename`, privately."""
    return {"Content-Disposition": f'attachment; filename="{filename}"', **PRIVATE_HEADERS}
