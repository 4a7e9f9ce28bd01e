"""/openapi.json: the document shipped in the package, describing every route but the dashboard's pages."""

from __future__ import annotations

import re
from importlib import resources

from flask import Flask

UNDOCUMENTED = ("/dashboard", "/static/")


def test_openapi_json_serves_the_packaged_document(app: Flask) -> None:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_data() == resources.files("app.web").joinpath("openapi.json").read_bytes()
    assert response.get_json()["openapi"] == "3.1.0"


def test_every_route_and_method_is_documented_and_nothing_else(app: Flask) -> None:
    served = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules() if not rule.rule.startswith(UNDOCUMENTED)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    documented = {(path, method) for path, operations in paths.items() for method in operations}
    assert documented == served


def test_every_documented_error_is_the_envelope(app: Flask) -> None:
    document = app.test_client().get("/openapi.json").get_json()
    envelope = document["components"]["schemas"]["Error"]
    assert envelope["required"] == ["type", "error", "request_id"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if int(status) >= 400 and "$ref" not in answer:
                    assert (path, status) in {("/health/ready", "503")}, f"{method} {path} {status}"
