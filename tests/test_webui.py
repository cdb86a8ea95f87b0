"""The read-only web UI through the Flask test client and over real HTTP."""

from __future__ import annotations

import json
import urllib.request

import pytest
from flask.testing import FlaskClient
from mailgate.webui import create_app
from mailgate.webui.server import WebThread
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import Settings
from mailgate.ingest.store import store_raw
from mailgate.worker import process_pending

from .conftest import free_port
from .mails import inquiry

XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"


def ingest(factory: sessionmaker[Session], *mails: bytes) -> None:
    for raw in mails:
        store_raw(factory, raw, channel="smtp")
    process_pending(factory, Settings())


@pytest.fixture
def client(dealer: sessionmaker[Session]) -> FlaskClient:
    return create_app(dealer, Settings()).test_client()


def test_list_and_detail_show_the_lead(dealer: sessionmaker[Session], client: FlaskClient) -> None:
    ingest(dealer, inquiry(1, name="Fritz Fröhlich", message="Gibt es den auch in Blau?"))
    page = client.get("/").get_data(as_text=True)
    assert "Fritz Fröhlich" in page and "Anna Schmidt" in page
    assert 'class="due due-ok">ok<' in page
    detail = client.get("/leads/1").get_data(as_text=True)
    assert "Gibt es den auch in Blau?" in detail
    assert "assigned" in detail and "fallback user" in detail  # protocol with reason
    inbound = client.get("/inbound/1").get_data(as_text=True)
    assert "processed" in inbound and "inquiry-1@autohaus-web.example" in inbound


def test_customer_content_is_escaped(dealer: sessionmaker[Session], client: FlaskClient) -> None:
    ingest(dealer, inquiry(2, name="Eve <b>Bold</b>", message=XSS))
    for url in ("/", "/leads/1", "/inbound/1"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in page and "<img src=x" not in page
        assert "<b>Bold</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/leads/1").get_data(as_text=True)


def test_unknown_ids_are_404(client: FlaskClient) -> None:
    assert client.get("/leads/999").status_code == 404
    assert client.get("/inbound/999").status_code == 404


def test_health_and_security_headers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok", "database": "ok"}
    for url in ("/", "/healthz"):
        headers = client.get(url).headers
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_pagination(dealer: sessionmaker[Session], client: FlaskClient) -> None:
    ingest(dealer, *(inquiry(100 + n, name=f"Kunde Nummer{n:02d}") for n in range(55)))
    first, second = (
        client.get("/").get_data(as_text=True),
        client.get("/?page=2").get_data(as_text=True),
    )
    assert "Seite 1 von 2" in first and "Seite 2 von 2" in second
    assert first.count("/leads/") == 50 and second.count("/leads/") == 5


def test_served_over_http_by_waitress(dealer: sessionmaker[Session]) -> None:
    port = free_port()
    web = WebThread(create_app(dealer, Settings()), "127.0.0.1", port).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok", "database": "ok"}
            assert response.headers["Server"] == "mailgate"
    finally:
        web.stop()
