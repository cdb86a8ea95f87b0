"""The dealership's logo in the header (``[web] logo`` in the config file).

The logo is a file the operator names in the config file, not an upload: the
web UI only ever serves that one file, at ``/branding/logo``, to anyone (the
login page shows it too).  It is read at most every few seconds (a replaced
file shows up without a restart) and only if it is a small image of the type
its suffix says; anything else is a 404 and a warning in the log, never a
broken page.  An SVG can carry scripts, so the response gets its own content
security policy that runs none and sandboxes the document when it is opened
on its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, make_response, url_for
from flask.typing import ResponseReturnValue

from mailgate.config import LOGO_TYPES

log = logging.getLogger("mailgate.webui")

bp = Blueprint("branding", __name__)
MAX_BYTES = 512 * 1024
RECHECK_SECONDS = 10.0
# Nothing in the image runs, loads or submits anything, even opened as a page of its own.
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
# The first bytes each raster type starts with (an SVG is text: checked for "<svg").
SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/webp": (b"RIFF",),
}


@dataclass
class _Logo:
    checked_at: float = 0.0
    data: bytes | None = None
    mimetype: str = ""


def _configured(app: Flask) -> str:
    return str(app.extensions["mailgate"]["settings"].web.logo or "")


def _looks_like(data: bytes, mimetype: str) -> bool:
    if mimetype == "image/svg+xml":
        head = data[:4096].lstrip().lower()
        return b"<svg" in head
    return any(data.startswith(sig) for sig in SIGNATURES[mimetype])


def _read(path: Path) -> tuple[bytes, str] | None:
    """The file's bytes and type if it is a usable logo, else None (with a warning)."""
    mimetype = LOGO_TYPES.get(path.suffix.lower())
    if mimetype is None:
        log.warning("[web] logo %s: not a PNG, JPEG, WebP or SVG file", path)
        return None
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            log.warning("[web] logo %s: %d bytes, at most %d are shown", path, size, MAX_BYTES)
            return None
        data = path.read_bytes()[:MAX_BYTES]
    except OSError as exc:
        log.warning("[web] logo %s cannot be read: %s", path, exc)
        return None
    if not _looks_like(data, mimetype):
        log.warning("[web] logo %s: the content is no %s image", path, mimetype)
        return None
    return data, mimetype


def current_logo(app: Flask) -> _Logo:
    """The logo as of the last few seconds (re-read when RECHECK_SECONDS have passed)."""
    cache: _Logo = app.extensions["mailgate"].setdefault("logo", _Logo())
    now = time.monotonic()
    if cache.checked_at and now - cache.checked_at < RECHECK_SECONDS:
        return cache
    configured = _configured(app)
    found = _read(Path(configured)) if configured else None
    cache.data, cache.mimetype = found if found else (None, "")
    cache.checked_at = now
    return cache


def logo_url() -> str | None:
    """For the header: the logo's address, or None when there is no usable logo."""
    logo = current_logo(current_app)
    if logo.data is None:
        return None
    return url_for("branding.logo", v=f"{len(logo.data):x}")  # a new file: a new address


@bp.route("/branding/logo")
def logo() -> ResponseReturnValue:
    found = current_logo(current_app)
    if found.data is None:
        abort(404)
    response = make_response(found.data)
    response.mimetype = found.mimetype
    response.headers["Content-Security-Policy"] = LOGO_POLICY
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals.update(logo_url=logo_url)


__all__ = ["init_app", "logo_url"]
