"""Hostile input through real HTTP on a real gateway (issue 19): each test names its finding."""

from __future__ import annotations

import httpx

from tests.utils.gateway import Gateway


def test_filter_key_injection_is_a_400_naming_filters(gateway: Gateway) -> None:  # finding 1
    for key in ("x'", "a') OR 1=1 OR json_extract(metadata, '$.x", "tea\nm"):
        r = httpx.post(gateway.v1 + "/retrieve", json={"query": "memory", "filters": {key: "x"}}, timeout=30)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert (err["param"], err["code"], err["type"]) == (
            "filters",
            "invalid_filters",
            "invalid_request_error",
        )
    # The collection still answers (nothing hangs behind the refused request).
    r = httpx.post(gateway.v1 + "/retrieve", json={"query": "memory", "filters": {"source": "x"}}, timeout=10)
    assert r.status_code == 200 and r.json()["results"] == []


def test_collection_name_with_a_trailing_newline_is_a_400(gateway: Gateway) -> None:  # finding 16
    r = httpx.post(gateway.v1 + "/collections", json={"name": "ops\n"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_name"
    names = [c["name"] for c in httpx.get(gateway.v1 + "/collections", timeout=30).json()["data"]]
    assert "ops\n" not in names and "ops" not in names


def test_json_routes_take_only_json_bodies(gateway: Gateway) -> None:  # finding 8
    routes = ["/collections", "/retrieve", "/chat/completions", "/embeddings", "/moderations", "/rca"]
    form = "name=csrf-made"
    for route in routes:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            r = httpx.post(gateway.v1 + route, content=form, headers={"Content-Type": ctype}, timeout=30)
            assert r.status_code == 415, (route, ctype, r.text)
            assert r.json()["error"]["code"] == "unsupported_media_type"
        r = httpx.post(gateway.v1 + route, content=b'{"name": "x"}', timeout=30)  # no Content-Type at all
        assert r.status_code == 415, (route, r.text)
    names = [c["name"] for c in httpx.get(gateway.v1 + "/collections", timeout=30).json()["data"]]
    assert "csrf-made" not in names
    ok = httpx.post(
        gateway.v1 + "/retrieve",
        content=b'{"query": "memory"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=30,
    )
    assert ok.status_code == 200


def test_no_key_mode_answers_only_allowed_hosts_and_same_site_writes(gateway: Gateway) -> None:  # finding 8
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.nip.io"):
        r = httpx.get(gateway.v1 + "/collections", headers={"Host": host}, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_host", host
    port = gateway.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST"):
        assert httpx.get(gateway.v1 + "/collections", headers={"Host": host}, timeout=10).status_code == 200
    assert (
        httpx.get(gateway.url + "/healthz", headers={"Host": "10.0.0.7:8000"}, timeout=10).status_code == 200
    )
    # A cross-site upload (a form on another page) is refused; the gateway's own page is not.
    files = {"file": ("x.txt", b"planted text\n", "text/plain")}
    r = httpx.post(
        gateway.v1 + "/collections/planted/documents", files=files, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site_request"
    r = httpx.post(gateway.v1 + "/retrieve", json={"query": "x"}, headers={"Origin": "null"}, timeout=10)
    assert r.status_code == 403
    r = httpx.post(
        gateway.v1 + "/retrieve", json={"query": "memory"}, headers={"Origin": gateway.url}, timeout=30
    )
    assert r.status_code == 200
