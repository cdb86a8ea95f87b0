"""Serving the Flask app with waitress (a production WSGI server) in a thread."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask
from waitress.server import create_server


def make_web_server(app: Flask, host: str, port: int) -> Any:
    return create_server(app, host=host, port=port, threads=4, ident="mailgate")


class WebThread:
    def __init__(self, app: Flask, host: str, port: int) -> None:
        self._server = make_web_server(app, host, port)
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    def start(self) -> WebThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.close()
        self._thread.join(timeout=5)
