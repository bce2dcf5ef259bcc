"""Hostile clients against the service (issue 11): uploads that hang a decoder, spoofed proxy headers, and
planted login CSRF cookies. Every hostile input is built here, from benign synthesised data."""

from __future__ import annotations

import dataclasses
import io
import re
import threading
import time
import zipfile
from contextlib import contextmanager

import hang_signal
import httpx
import pytest
from fastapi.testclient import TestClient
from helpers import image_bytes, synth_image
from service_helpers import free_port, make_config, make_keys, make_settings, scan

from tripwire.config import Limits
from tripwire.service.app import create_app
from tripwire.signals.registry import registry
from tripwire.store.db import open_db


def _hanging_upload() -> bytes:
    """Bytes the test-only extractor of :mod:`hang_signal` blocks on for a minute (a decoder that hangs)."""
    return b"not an image, " + hang_signal.MARKER + b" and then nothing"


def _codes(body: dict) -> list[str | None]:
    return [(r.get("error") or {}).get("code") for f in body["files"] for r in f["records"]]


def test_hanging_upload_times_out_and_does_not_block_other_uploads(tmp_path):
    """Two uploads that would each occupy an extractor for a minute fill both scan slots; each comes back with
    a ``timeout`` record soon after the per-item limit, and an ordinary upload sent meanwhile is served."""
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    keys = make_keys(db)
    config = make_config(tmp_path)
    config = dataclasses.replace(config, limits=dataclasses.replace(Limits(), item_timeout_s=1.0),
                                 sections={**config.sections, "signals": {"types": [hang_signal.SPEC]}})
    settings = make_settings(config, scan_concurrency=2)
    slow, good = _hanging_upload(), image_bytes(synth_image(3))
    try:
        _hanging_uploads_time_out(tmp_path, db, keys, config, settings, slow, good)
    finally:
        registry.unregister(hang_signal.HangSignal.name)


def _hanging_uploads_time_out(tmp_path, db, keys, config, settings, slow: bytes, good: bytes) -> None:
    app = create_app(config=config, settings=settings, database=db)
    with TestClient(app, base_url="https://testserver") as client:
        warm = scan(client, keys.h("submitter"), [("warm.jpg", image_bytes(synth_image(2)))])  # workers started
        assert warm.status_code == 200 and _codes(warm.json()) == [None]
        results: dict[str, tuple[float, dict]] = {}

        def post(name: str, data: bytes) -> None:
            t0 = time.monotonic()
            r = scan(client, keys.h("submitter"), [(name, data)])
            assert r.status_code == 200, r.text
            results[name] = (time.monotonic() - t0, r.json())

        threads = [threading.Thread(target=post, args=(f"hostile-{i}.png", slow)) for i in (1, 2)]
        for t in threads:
            t.start()
        time.sleep(0.3)  # both slots are taken by now
        post("ordinary.jpg", good)
        for t in threads:
            t.join(timeout=120)
        # inside an archive only the hanging member times out: the others are still processed
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:  # deflated: the archive's own bytes
            zf.writestr("a.jpg", image_bytes(synth_image(4)))      # do not carry the marker
            zf.writestr("slow.png", slow)
            zf.writestr("b.jpg", image_bytes(synth_image(5)))
        bundle = scan(client, keys.h("submitter"), [("bundle.zip", buf.getvalue())])
        assert bundle.status_code == 200
        by_member = {r["path"].rsplit("/", 1)[-1]: r for r in bundle.json()["files"][0]["records"]}
    db.dispose()
    assert (by_member["slow.png"]["error"] or {}).get("code") == "timeout"
    for name in ("a.jpg", "b.jpg", "bundle.zip"):
        assert by_member[name]["error"] is None and (name == "bundle.zip" or by_member[name]["pdq"])
    for name in ("hostile-1.png", "hostile-2.png"):
        seconds, body = results[name]
        assert _codes(body) == ["timeout"], body
        assert "no result within 1 s" in body["files"][0]["records"][0]["error"]["message"]
        assert str(tmp_path) not in str(body) and "/tw-scan-" not in str(body)  # no spool path leaks
        assert seconds < 8.0, f"{name} answered after {seconds:.1f} s: it held its slot past the 1 s limit"
    seconds, body = results["ordinary.jpg"]
    assert _codes(body) == [None] and body["files"][0]["records"][0]["pdq"]
    assert seconds < 8.0, f"the ordinary upload waited {seconds:.1f} s behind the hostile ones"


def test_service_item_timeout_setting_overrides_the_limits(tmp_path):
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    config = make_config(tmp_path)
    app = create_app(config=config, settings=make_settings(config, item_timeout_s=2.5), database=db)
    assert app.state.service.scanner.workers.item_timeout_s == 2.5
    app = create_app(config=config, settings=make_settings(config), database=db)
    assert app.state.service.scanner.workers.item_timeout_s == config.limits.item_timeout_s
    db.dispose()


# -- login rate limit vs. spoofed X-Forwarded-For ---------------------------------------------------------

TOO_MANY = "Too many attempts"


@contextmanager
def _served(tmp_path, monkeypatch, service_toml: str = ""):
    """``tripwire serve`` as it really runs: the app and the uvicorn options the command passes to
    ``uvicorn.run``, served by a real uvicorn on a loopback port (clients connect from 127.0.0.1)."""
    import uvicorn
    from typer.testing import CliRunner

    from tripwire.cli import app as cli

    captured: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app, options=kw))
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)  # uvicorn's own default applies
    cfg = tmp_path / "serve.toml"
    cfg.write_text(f'[banks]\nindex_path = "{tmp_path / "pdqindex"}"\n[service]\n{service_toml}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "serve.db"), "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    options = {k: v for k, v in captured["options"].items() if k not in ("host", "port", "log_level")}
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(captured["app"], host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _login_attempt(client, forwarded_for: str | None) -> str:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/console/login", data={"key": "twk_000000000000_" + "x" * 43, "csrf": "x"}, headers=headers).text


def test_spoofed_forwarded_for_does_not_escape_the_login_limit(tmp_path, monkeypatch):
    """By default no proxy is trusted: a client that makes up a new X-Forwarded-For for every guess (here from
    loopback, like anyone behind a local tunnel or pass-through TLS terminator) still hits the login limit."""
    with _served(tmp_path, monkeypatch) as client:
        pages = [_login_attempt(client, f"198.51.100.{n}") for n in range(12)]
    assert sum(TOO_MANY in p for p in pages) >= 4, "every spoofed address got a fresh login bucket"


def test_a_configured_proxy_is_believed(tmp_path, monkeypatch):
    """With the proxy listed in trusted_proxies the limit counts per real client (the address the proxy
    appends), so one client's guesses do not lock out another — and a client cannot escape by prepending."""
    with _served(tmp_path, monkeypatch, 'trusted_proxies = ["127.0.0.1"]') as client:
        pages = [_login_attempt(client, f"192.0.2.{n}, 203.0.113.7") for n in range(12)]
        assert sum(TOO_MANY in p for p in pages) >= 4
        other = _login_attempt(client, "203.0.113.8")
    assert TOO_MANY not in other and "form expired" in other


def test_trusted_proxies_must_be_addresses(tmp_path):
    from tripwire.errors import UsageError
    from tripwire.service.settings import ServiceSettings

    config = make_config(tmp_path, trusted_proxies=["*"])
    with pytest.raises(UsageError, match="not an IP address or network"):
        ServiceSettings.from_config(config, environ={})
    ok = ServiceSettings.from_config(make_config(tmp_path, trusted_proxies=["10.0.0.0/24", "::1"]), environ={})
    assert ok.trusted_proxies == ("10.0.0.0/24", "::1")


# -- login CSRF: a planted cookie+field pair -----------------------------------------------------------------

def _login_env(tmp_path, **settings):
    db = open_db(f"sqlite:///{tmp_path / 'case.db'}")
    keys = make_keys(db)
    config = make_config(tmp_path)
    return db, keys, create_app(config=config, settings=make_settings(config, **settings), database=db)


def _form_token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_login_csrf_pair_made_up_by_a_sibling_subdomain_is_refused(tmp_path):
    """A sibling subdomain can set cookies for the parent domain. Before, any cookie value with the same value
    in the form field logged in (plain double submit); now the field must be signed by the server for the
    cookie's nonce, and over HTTPS the cookie is __Host- prefixed (not settable from elsewhere)."""
    db, keys, app = _login_env(tmp_path)
    with TestClient(app, base_url="https://testserver") as client:
        planted = "planted-by-sibling-subdomain"
        for name in ("tw_login_csrf", "__Host-tw_login_csrf"):
            client.cookies.set(name, planted)
        forged = client.post("/console/login", data={"key": keys.reviewer, "csrf": planted}, follow_redirects=False)
        assert forged.status_code == 401 and "expired" in forged.text
        assert "tw_session" not in forged.cookies
        client.cookies.clear()

        # the real form still works, and its cookie is one only this host can set
        form = client.get("/console/login")
        set_cookie = form.headers["set-cookie"]
        assert set_cookie.startswith("__Host-tw_login_csrf=") and "Path=/" in set_cookie and "Domain" not in set_cookie
        assert "Secure" in set_cookie and "HttpOnly" in set_cookie
        token = _form_token(form.text)
        nonce = client.cookies.get("__Host-tw_login_csrf")
        assert token != nonce

        # a genuine token does not verify with another nonce (nor the nonce as its own token)
        client.cookies.clear()
        client.cookies.set("__Host-tw_login_csrf", "another-nonce")
        swapped = client.post("/console/login", data={"key": keys.reviewer, "csrf": token}, follow_redirects=False)
        assert swapped.status_code == 401 and "expired" in swapped.text
        client.cookies.clear()
        client.cookies.set("__Host-tw_login_csrf", nonce)
        self_signed = client.post("/console/login", data={"key": keys.reviewer, "csrf": nonce}, follow_redirects=False)
        assert self_signed.status_code == 401

        client.cookies.clear()
        form = client.get("/console/login")
        ok = client.post("/console/login", data={"key": keys.reviewer, "csrf": _form_token(form.text)}, follow_redirects=False)
        assert ok.status_code == 303 and "tw_session" in ok.cookies
    db.dispose()


def test_login_csrf_token_is_signed_and_expires():
    from tripwire.service.auth import login_csrf_ok, login_csrf_token

    token = login_csrf_token(b"server-secret", "nonce-1", now=1_000_000)
    assert login_csrf_ok(b"server-secret", "nonce-1", token, now=1_000_010)
    assert not login_csrf_ok(b"other-secret", "nonce-1", token, now=1_000_010)  # another server's token
    assert not login_csrf_ok(b"server-secret", "nonce-2", token, now=1_000_010)
    assert not login_csrf_ok(b"server-secret", "nonce-1", token, now=1_000_000 + 3601)  # expired
    assert not login_csrf_ok(b"server-secret", "nonce-1", "nonce-1", now=1_000_010)
    assert not login_csrf_ok(b"server-secret", None, token, now=1_000_010)


def test_plain_http_cookie_and_shared_secret(tmp_path):
    """Without Secure cookies (plain-HTTP testing) the cookie cannot carry the __Host- prefix; and two server
    processes configured with the same secret_key accept each other's login forms."""
    db, keys, app = _login_env(tmp_path, cookie_secure=False, secret_key="shared-secret")
    config = make_config(tmp_path)
    sibling = create_app(config=config, database=db,
                         settings=make_settings(config, cookie_secure=False, secret_key="shared-secret"))
    with TestClient(app, base_url="http://testserver") as one, TestClient(sibling, base_url="http://testserver") as two:
        form = one.get("/console/login")
        assert form.headers["set-cookie"].startswith("tw_login_csrf=")
        two.cookies.set("tw_login_csrf", one.cookies.get("tw_login_csrf"))
        r = two.post("/console/login", data={"key": keys.reviewer, "csrf": _form_token(form.text)}, follow_redirects=False)
        assert r.status_code == 303
    stranger = create_app(config=config, database=db, settings=make_settings(config, cookie_secure=False))  # own secret
    with TestClient(app, base_url="http://testserver") as one, TestClient(stranger, base_url="http://testserver") as three:
        form = one.get("/console/login")
        three.cookies.set("tw_login_csrf", one.cookies.get("tw_login_csrf"))
        r = three.post("/console/login", data={"key": keys.reviewer, "csrf": _form_token(form.text)}, follow_redirects=False)
        assert r.status_code == 401 and "expired" in r.text
    db.dispose()
