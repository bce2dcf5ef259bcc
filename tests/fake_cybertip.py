"""A local stand-in for the CyberTipline reporting API, with failure injection, for the tests.

It speaks the documented protocol (HTTP Basic auth; XML ``reportResponse`` / ``reportDoneResponse`` with
``responseCode``, ``reportId``, ``fileId``, ``hash``; ``/status``, ``/submit``, ``/upload``, ``/fileinfo``,
``/finish``, ``/retract``), validates submitted XML against the same XSD NCMEC publishes, and keeps the state
the tests assert on: which reports were opened, finished or retracted, and which tripwire reference (written
in the report's additionalInfo) each one carries.

Faults are queued per endpoint and consumed in order:

* ``"500"``: answer HTTP 500 without doing anything;
* ``"timeout_before"``: stall longer than the client's timeout, then do nothing;
* ``"timeout_after"``: do the work, then stall past the client's timeout (the response is lost);
* ``"reject"``: answer responseCode 4100 (validation failed).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from functools import lru_cache
from pathlib import Path

from lxml import etree

#: the schema as NCMEC publishes it (../shared/specs), not tripwire's bundled copy
SPEC_XSD = Path(__file__).resolve().parents[1].parent / "shared" / "specs" / "ncmec" / "cyber_tipline.xsd"


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SPEC_XSD), etree.XMLParser(resolve_entities=False, no_network=True)))

USER, PASSWORD = "esp-user", "esp-secret"


@dataclass
class FakeReport:
    id: int
    xml: bytes
    reference: str | None
    state: str = "open"  # open, finished, retracted
    files: dict[str, dict] = field(default_factory=dict)


class FakeCyberTipline:
    def __init__(self, stall: float = 0.6) -> None:
        self.stall = stall
        self.reports: dict[int, FakeReport] = {}
        self.faults: dict[str, list[str]] = {}
        self.calls: list[str] = []
        self._next = 7_000_000
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ispws"

    def __enter__(self) -> "FakeCyberTipline":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def inject(self, endpoint: str, *faults: str) -> None:
        self.faults.setdefault(endpoint, []).extend(faults)

    # -- what the tests assert on ----------------------------------------------------------------------

    def finished(self, reference: str | None = None) -> list[FakeReport]:
        return [r for r in self.reports.values() if r.state == "finished" and (reference is None or r.reference == reference)]

    def by_reference(self, reference: str) -> list[FakeReport]:
        return [r for r in self.reports.values() if r.reference == reference]

    # -- protocol --------------------------------------------------------------------------------------

    def _reply(self, h: BaseHTTPRequestHandler, body: str, status: int = 200) -> None:
        data = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + body).encode("utf-8")
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/xml;charset=UTF-8")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _response(self, h, code: int, description: str = "", **extra) -> None:
        parts = [f"<responseCode>{code}</responseCode><responseDescription>{description}</responseDescription>"]
        for tag in ("reportId", "fileId", "hash"):
            if extra.get(tag) is not None:
                parts.append(f"<{tag}>{extra[tag]}</{tag}>")
        self._reply(h, "<reportResponse>" + "".join(parts) + "</reportResponse>")

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = h.path.split("?", 1)[0]
        if not path.startswith("/ispws/"):
            return self._reply(h, "<error/>", 404)
        endpoint = path[len("/ispws/"):]
        self.calls.append(endpoint)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            return self._reply(h, "<reportResponse><responseCode>2000</responseCode>"
                                  "<responseDescription>Authentication required</responseDescription></reportResponse>", 401)
        with self._lock:
            fault = self.faults.get(endpoint, []).pop(0) if self.faults.get(endpoint) else None
        if fault == "500":
            return self._reply(h, "<html>server error</html>", 500)
        if fault == "timeout_before":
            time.sleep(self.stall)
            return
        if fault == "reject":
            return self._response(h, 4100, "Validation failed")
        with self._lock:
            answer = self._do(endpoint, method, h.headers.get("Content-Type", ""), body)
        if fault == "timeout_after":
            time.sleep(self.stall)  # the work is done; the client has given up waiting
            return
        answer(h)

    def _do(self, endpoint: str, method: str, content_type: str, body: bytes):
        if endpoint == "status" and method == "GET":
            return lambda h: self._response(h, 0, f"Remote User : {USER}, Remote Ip : 127.0.0.1")
        if method != "POST":
            return lambda h: self._reply(h, "<error/>", 405)
        if endpoint == "submit":
            doc = self._valid(body, "report")
            if doc is None:
                return lambda h: self._response(h, 4100, "Validation failed")
            info = doc.findtext("additionalInfo") or ""
            ref = re.search(r"tripwire reference ([0-9a-f-]{36})", info)
            self._next += 1
            rid = self._next
            self.reports[rid] = FakeReport(rid, body, ref.group(1) if ref else None)
            return lambda h: self._response(h, 0, "Success", reportId=rid)
        if endpoint == "upload":
            fields = self._multipart(content_type, body)
            report = self._report(fields.get("id", b"").decode())
            if isinstance(report, int):
                return lambda h, c=report: self._response(h, c, "Report problem")
            data = fields.get("file")
            if data is None:
                return lambda h: self._response(h, 4200, "Malformed file submittal")
            fid = uuid.uuid4().hex
            md5 = hashlib.md5(data).hexdigest()
            report.files[fid] = {"md5": md5, "size": len(data), "details": None}
            return lambda h: self._response(h, 0, "Success", reportId=report.id, fileId=fid, hash=md5)
        if endpoint == "fileinfo":
            doc = self._valid(body, "fileDetails")
            if doc is None:
                return lambda h: self._response(h, 4100, "Validation failed")
            report = self._report(doc.findtext("reportId") or "")
            if isinstance(report, int):
                return lambda h, c=report: self._response(h, c, "Report problem")
            fid = doc.findtext("fileId")
            if fid not in report.files:
                return lambda h: self._response(h, 5002, "File does not exist")
            report.files[fid]["details"] = body
            return lambda h: self._response(h, 0, "Success", reportId=report.id)
        if endpoint in ("finish", "retract"):
            form = parse_qs(body.decode())
            report = self.reports.get(int(form.get("id", ["0"])[0] or 0))
            if report is None:
                return lambda h: self._response(h, 5001, "Report does not exist")
            if report.state == "finished":
                return lambda h: self._response(h, 5102, "Report already finished")
            if report.state == "retracted":
                return lambda h: self._response(h, 5101, "Report already retracted")
            if endpoint == "retract":
                report.state = "retracted"
                return lambda h: self._response(h, 0, "Success", reportId=report.id)
            report.state = "finished"
            files = "".join(f"<fileId>{f}</fileId>" for f in report.files)
            return lambda h: self._reply(h, f"<reportDoneResponse><responseCode>0</responseCode><reportId>{report.id}"
                                            f"</reportId><files>{files}</files></reportDoneResponse>")
        return lambda h: self._reply(h, "<error/>", 404)

    def _report(self, rid: str):
        report = self.reports.get(int(rid)) if rid.isdigit() else None
        if report is None:
            return 5001
        if report.state == "finished":
            return 5102
        if report.state == "retracted":
            return 5101
        return report

    @staticmethod
    def _valid(body: bytes, root: str):
        try:
            doc = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            return None
        if doc.tag != root or not schema().validate(doc):
            return None
        return doc

    @staticmethod
    def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
        msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        out = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                out[name] = part.get_payload(decode=True) or b""
        return out
