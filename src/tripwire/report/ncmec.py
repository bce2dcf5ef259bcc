"""NCMEC CyberTipline report XML, built from reviewed items and validated against NCMEC's schema.

A CyberTipline submission is several XML documents: one ``<report>`` (incident summary, where it happened,
who reports, who is reported) sent to ``/submit``, then one ``<fileDetails>`` per uploaded file (hashes,
annotations, classification) sent to ``/fileinfo`` with the ``reportId`` and ``fileId`` the server returned.
Both are built here; every document is validated against ``schemas/cyber_tipline.xsd`` (NCMEC's schema,
as vendored by Boostport/ncmec-go, Apache-2.0) before it leaves this module, so a report that NCMEC would
reject for its shape is caught before anything is sent.

What goes in, and from where:

* only items whose latest decision is a recorded human decision that supports a report
  (:data:`tripwire.report.reviewed.REPORTABLE`), grouped into one report per reported account;
* ``incidentSummary``: the configured incident type; ``reportAnnotations`` only as a person asserted them
  (``--annotation``, or ``report_annotations`` the review console stored in the item context) — tripwire
  never infers sextortion, solicitation and the like from automated signals;
* ``reporter`` from ``[reporting.ncmec.reporter]`` / ``[reporting.ncmec.contact]``;
* ``personOrUserReported`` from the item context (ESP identifier, screen name, profile URL, IP capture events);
* ``internetDetails`` as a web-page incident carrying the post URLs;
* per file: MD5 and SHA-1 as ``originalFileHash`` with their ``hashType``, PDQ and SHA-256 as ``details``
  of type HASH, ``fileAnnotations/generativeAi`` when provenance says ``ai_generated`` (or the reviewer
  decided ``ai_generated``), and ``industryClassification`` only when ``industry_classification = true``
  (the company signed NCMEC's Industry Hash Sharing MOU) and a person or an NCMEC-scheme bank supplied the
  A1-B2 code. ``fileViewedByEsp`` is legally significant (it decides whether investigators may open the
  file without a warrant), so it is written only when the context or the configuration states it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from lxml import etree

from .. import __version__
from ..errors import UsageError
from ..records import PDQ_DRAFT_NOTE
from .reviewed import ReviewedItem

XSD_RESOURCE = "schemas/cyber_tipline.xsd"
SCHEMA_LOCATION = "https://report.cybertip.org/ispws/xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
TEST_URL = "https://exttest.cybertip.org/ispws"
PRODUCTION_URL = "https://report.cybertip.org/ispws"
ENVIRONMENTS = {"test": TEST_URL, "production": PRODUCTION_URL}
DEFAULT_INCIDENT = "Child Pornography (possession, manufacture, and distribution)"
REPORT_ANNOTATIONS = ("sextortion", "csamSolicitation", "minorToMinorInteraction", "spam", "sadisticOnlineExploitation")
FILE_ANNOTATIONS = ("animeDrawingVirtualHentai", "potentialMeme", "viral", "possibleSelfProduction", "physicalHarm",
                    "violenceGore", "bestiality", "liveStreaming", "infant", "generativeAi")
INDUSTRY_CODES = ("A1", "A2", "B1", "B2")
#: PDQ hashes of lower quality (flat or tiny images) match too much to be worth sending (DESIGN.md: matching)
MIN_PDQ_QUALITY = 50
IP_EVENTS = ("Login", "Registration", "Purchase", "Upload", "Other", "Unknown")
USERNAME_ENV = "TRIPWIRE_NCMEC_USERNAME"
PASSWORD_ENV = "TRIPWIRE_NCMEC_PASSWORD"


class ReportValidationError(Exception):
    """A generated document does not validate against the CyberTipline schema (nothing is sent)."""

    def __init__(self, message: str, errors: Sequence[str]) -> None:
        super().__init__(message + ": " + "; ".join(errors[:5]))
        self.errors = list(errors)


# -- schema -------------------------------------------------------------------------------------------


def xsd_path() -> Path:
    return Path(str(resources.files("tripwire.report").joinpath(XSD_RESOURCE)))


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(xsd_path()), parser))


@lru_cache(maxsize=1)
def incident_types() -> tuple[str, ...]:
    """The incident types the schema enumerates (read from the XSD, so they follow NCMEC's updates)."""
    tree = etree.parse(str(xsd_path()), etree.XMLParser(resolve_entities=False, no_network=True))
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    return tuple(tree.xpath("//xs:simpleType[@name='incidentType']//xs:enumeration/@value", namespaces=ns))


def validate(xml: bytes) -> None:
    """Raise :class:`ReportValidationError` unless ``xml`` is a valid ``report`` or ``fileDetails`` document."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        doc = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise ReportValidationError("not well-formed XML", [str(exc)]) from exc
    xsd = schema()
    if not xsd.validate(doc):
        errors = [f"line {e.line}: {e.message}" for e in xsd.error_log]
        raise ReportValidationError(f"<{doc.tag}> does not validate against cyber_tipline.xsd", errors)


def pretty_xml(xml: bytes) -> bytes:
    """``xml`` indented for people (``report ncmec --dry-run`` prints this). Only the whitespace between
    elements changes; the document validates the same, and what is submitted is the compact form."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    doc = etree.fromstring(xml, parser)
    return etree.tostring(doc, pretty_print=True, xml_declaration=True, encoding="UTF-8")


# -- configuration -------------------------------------------------------------------------------------

_PERSON_KEYS = {"first_name", "last_name", "email", "phone", "phone_country_code", "phone_type", "address"}
_ADDRESS_KEYS = {"street", "city", "zip", "state", "non_usa_state", "country", "type"}
_NCMEC_KEYS = {"environment", "base_url", "username", "password_file", "incident_type", "platform", "esp_service",
               "industry_classification", "file_viewed_by_esp", "publicly_available", "company_template",
               "terms_of_service", "legal_url", "timeout_s", "retries", "backoff_s", "reporter", "contact",
               "preserve_evidence", "stale_after_hours"}


@dataclass(frozen=True)
class Contact:
    """A person record (``reportingPerson`` / ``contactPerson``)."""

    first_name: str | None = None
    last_name: str | None = None
    email: tuple[str, ...] = ()
    phone: str | None = None
    phone_country_code: str | None = None
    phone_type: str | None = "Business"
    address: Mapping[str, str] | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> "Contact":
        unknown = set(data) - _PERSON_KEYS
        if unknown:
            raise UsageError(f"unknown setting(s) in [{where}]: {', '.join(sorted(unknown))}")
        emails = data.get("email") or ()
        if isinstance(emails, str):
            emails = (emails,)
        address = data.get("address")
        if address is not None:
            if not isinstance(address, Mapping):
                raise UsageError(f"[{where}.address] must be a table")
            bad = set(address) - _ADDRESS_KEYS
            if bad:
                raise UsageError(f"unknown setting(s) in [{where}.address]: {', '.join(sorted(bad))}")
        return cls(data.get("first_name"), data.get("last_name"), tuple(str(e) for e in emails), data.get("phone"),
                   data.get("phone_country_code"), data.get("phone_type", "Business"),
                   {k: str(v) for k, v in address.items()} if address else None)

    @property
    def empty(self) -> bool:
        return not (self.first_name or self.last_name or self.email or self.phone)

    def element(self, tag: str) -> etree._Element:
        el = etree.Element(tag)
        _text(el, "firstName", self.first_name)
        _text(el, "lastName", self.last_name)
        if self.phone:
            phone = etree.SubElement(el, "phone")
            phone.text = str(self.phone)
            if self.phone_type:
                phone.set("type", self.phone_type)
            if self.phone_country_code:
                phone.set("countryCallingCode", self.phone_country_code)
        for email in self.email:
            etree.SubElement(el, "email").text = email
        if self.address:
            a = self.address
            addr = etree.SubElement(el, "address")
            if a.get("type"):
                addr.set("type", a["type"])
            _text(addr, "address", a.get("street"))
            _text(addr, "city", a.get("city"))
            _text(addr, "zipCode", a.get("zip"))
            _text(addr, "state", a.get("state"))
            _text(addr, "nonUsaState", a.get("non_usa_state"))
            _text(addr, "country", a.get("country"))
        return el


@dataclass
class NcmecSettings:
    """``[reporting.ncmec]``: where and how to report, and who the reporter is."""

    base_url: str = TEST_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    incident_type: str = DEFAULT_INCIDENT
    platform: str | None = None
    esp_service: str | None = None
    reporter: Contact = field(default_factory=Contact)
    contact: Contact | None = None
    company_template: str | None = None
    terms_of_service: str | None = None
    legal_url: str | None = None
    #: the company executed NCMEC's Industry Hash Sharing MOU: industryClassification may be sent
    industry_classification: bool = False
    file_viewed_by_esp: bool | None = None
    publicly_available: bool | None = None
    timeout_s: float = 30.0
    retries: int = 5
    backoff_s: float = 1.0
    #: preserve each reported file's bytes in the evidence store (when one is configured)
    preserve_evidence: bool = True
    #: an opened, unfinished report older than this is retracted by ``recover``
    stale_after_hours: float = 24.0

    @classmethod
    def from_config(cls, config: Any = None, environ: Mapping[str, str] | None = None) -> "NcmecSettings":
        environ = os.environ if environ is None else environ
        reporting = ((getattr(config, "sections", None) or {}).get("reporting")) or {}
        data = dict(reporting.get("ncmec") or {})
        if "password" in data:
            raise UsageError("[reporting.ncmec] password: never put the password in the configuration file; "
                             f"set ${PASSWORD_ENV} or password_file")
        unknown = set(data) - _NCMEC_KEYS
        if unknown:
            raise UsageError(f"unknown setting(s) in [reporting.ncmec]: {', '.join(sorted(unknown))}")
        env_name = str(data.get("environment", "test")).lower()
        if env_name not in ENVIRONMENTS:
            raise UsageError(f"[reporting.ncmec] environment must be 'test' or 'production', not {env_name!r}")
        base_url = str(data.get("base_url") or ENVIRONMENTS[env_name]).rstrip("/")
        password = environ.get(PASSWORD_ENV)
        if not password and data.get("password_file"):
            try:
                password = Path(str(data["password_file"])).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise UsageError(f"cannot read [reporting.ncmec] password_file: {exc}") from exc
        incident = str(data.get("incident_type", DEFAULT_INCIDENT))
        if incident not in incident_types():
            raise UsageError(f"[reporting.ncmec] incident_type {incident!r} is not one of: {'; '.join(incident_types())}")
        contact = data.get("contact")
        return cls(
            base_url=base_url,
            username=environ.get(USERNAME_ENV) or data.get("username"),
            password=password,
            incident_type=incident,
            platform=data.get("platform"),
            esp_service=data.get("esp_service"),
            reporter=Contact.from_mapping(data.get("reporter") or {}, "reporting.ncmec.reporter"),
            contact=Contact.from_mapping(contact, "reporting.ncmec.contact") if contact else None,
            company_template=data.get("company_template"),
            terms_of_service=data.get("terms_of_service"),
            legal_url=data.get("legal_url"),
            industry_classification=bool(data.get("industry_classification", False)),
            file_viewed_by_esp=_opt_bool(data.get("file_viewed_by_esp")),
            publicly_available=_opt_bool(data.get("publicly_available")),
            timeout_s=float(data.get("timeout_s", 30.0)),
            retries=int(data.get("retries", 5)),
            backoff_s=float(data.get("backoff_s", 1.0)),
            preserve_evidence=bool(data.get("preserve_evidence", True)),
            stale_after_hours=float(data.get("stale_after_hours", 24.0)),
        )

    def submission_problems(self) -> list[str]:
        """What stops a real submission (a dry run only warns)."""
        problems = []
        if not self.username or not self.password:
            problems.append(f"the CyberTipline credentials are missing: set ${USERNAME_ENV} and ${PASSWORD_ENV} "
                            "(or username and password_file in [reporting.ncmec])")
        if self.reporter.empty or not self.reporter.email:
            problems.append("the reporting person is incomplete: [reporting.ncmec.reporter] needs at least a name "
                            "and an email address")
        return problems


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


# -- grouping ------------------------------------------------------------------------------------------


@dataclass
class ReportPlan:
    """The items of one CyberTipline report (one reported account) and what a person asserted about it."""

    key: str
    items: list[ReviewedItem]
    annotations: tuple[str, ...] = ()
    escalate: str | None = None

    @property
    def subject(self) -> str:
        ctx = self.items[0].context
        who = ctx.get("account_handle") or ctx.get("account_id") or ctx.get("profile_url")
        platform = ctx.get("platform")
        if not who:
            return "no account context"
        return f"{platform}/{who}" if platform else str(who)

    @property
    def decision_ids(self) -> list[int]:
        return [i.decision.id for i in self.items]


def check_annotations(names: Iterable[str], allowed: Sequence[str] = REPORT_ANNOTATIONS) -> tuple[str, ...]:
    """Canonical annotation names (case-insensitive input); UsageError for an unknown one."""
    by_lower = {a.lower(): a for a in allowed}
    out = []
    for name in names:
        canon = by_lower.get(str(name).strip().lower())
        if canon is None:
            raise UsageError(f"unknown annotation {name!r} (expected one of {', '.join(allowed)})")
        if canon not in out:
            out.append(canon)
    return tuple(out)


def _account_key(item: ReviewedItem) -> tuple[str, str]:
    ctx = item.context
    who = ctx.get("account_id") or ctx.get("account_handle") or ctx.get("profile_url") or ""
    return (str(ctx.get("platform") or ""), str(who))


def plan_reports(items: Sequence[ReviewedItem], *, annotations: Iterable[str] = (), escalate: str | None = None,
                 key_factory: Callable[[], str] = lambda: str(uuid.uuid4())) -> list[ReportPlan]:
    """One report per reported account (items without account context share one report)."""
    asserted = check_annotations(annotations)
    groups: dict[tuple[str, str], list[ReviewedItem]] = {}
    for item in items:
        groups.setdefault(_account_key(item), []).append(item)
    plans = []
    for _, members in sorted(groups.items(), key=lambda kv: kv[0]):
        from_context = [a for m in members for a in (m.extra.get("report_annotations") or [])]
        plans.append(ReportPlan(key_factory(), members, tuple(dict.fromkeys(asserted + check_annotations(from_context))),
                                escalate))
    return plans


# -- building ------------------------------------------------------------------------------------------


def _text(parent: etree._Element, tag: str, value: Any) -> etree._Element | None:
    if value is None or value == "":
        return None
    el = etree.SubElement(parent, tag)
    el.text = str(value)
    return el


def _bool(parent: etree._Element, tag: str, value: bool | None) -> None:
    if value is not None:
        etree.SubElement(parent, tag).text = "true" if value else "false"


def _root(tag: str) -> etree._Element:
    root = etree.Element(tag, nsmap={"xsi": XSI})
    root.set(f"{{{XSI}}}noNamespaceSchemaLocation", SCHEMA_LOCATION)
    return root


def xml_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 text (``Z`` allowed) or datetime as an aware datetime; None when absent or unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _event_name(value: Any) -> str:
    by_lower = {e.lower(): e for e in IP_EVENTS}
    return by_lower.get(str(value or "").strip().lower(), "Other" if value else "Unknown")


def _ip_event(parent: etree._Element, tag: str, event: Mapping[str, Any]) -> None:
    ip = event.get("ip") or event.get("ip_address")
    if not ip:
        return
    el = etree.SubElement(parent, tag)
    etree.SubElement(el, "ipAddress").text = str(ip)
    etree.SubElement(el, "eventName").text = _event_name(event.get("event"))
    when = parse_time(event.get("at"))
    if when is not None:
        etree.SubElement(el, "dateTime").text = xml_datetime(when)
    if event.get("possible_proxy") is not None:
        _bool(el, "possibleProxy", bool(event.get("possible_proxy")))
    if isinstance(event.get("port"), int):
        etree.SubElement(el, "port").text = str(event["port"])


def upload_time(item: ReviewedItem) -> datetime | None:
    """When the reported user uploaded the file, if the platform said so."""
    times = [parse_time(e.get("at")) for e in item.context.get("ip_events") or []
             if isinstance(e, Mapping) and _event_name(e.get("event")) == "Upload"]
    times += [parse_time(item.extra.get(k)) for k in ("uploaded_at", "posted_at")]
    known = [t for t in times if t is not None]
    return min(known) if known else None


def incident_time(plan: ReportPlan) -> tuple[datetime, str]:
    uploads = [t for t in (upload_time(i) for i in plan.items) if t is not None]
    if uploads:
        return min(uploads), "Earliest upload time of the reported files, as recorded by the platform."
    seen = [i.scanned_at.replace(tzinfo=i.scanned_at.tzinfo or timezone.utc) for i in plan.items if i.scanned_at]
    when = min(seen) if seen else datetime.now(timezone.utc)
    return when, "The platform supplied no upload time: this is when tripwire first processed the files."


def _urls(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(v).strip() for v in values if isinstance(v, str) and v.strip()))


def build_report(plan: ReportPlan, settings: NcmecSettings) -> bytes:
    """The ``<report>`` document for ``/submit`` (validated)."""
    if not plan.items:
        raise UsageError("a report needs at least one reviewed item")
    root = _root("report")
    summary = etree.SubElement(root, "incidentSummary")
    etree.SubElement(summary, "incidentType").text = settings.incident_type
    platforms = _urls(i.context.get("platform") for i in plan.items)
    _text(summary, "platform", platforms[0] if len(platforms) == 1 else settings.platform)
    _text(summary, "escalateToHighPriority", plan.escalate)
    if plan.annotations:
        ann = etree.SubElement(summary, "reportAnnotations")
        for name in REPORT_ANNOTATIONS:  # xs:all: any order is valid, a fixed one keeps output stable
            if name in plan.annotations:
                etree.SubElement(ann, name).text = "true"
    when, why = incident_time(plan)
    etree.SubElement(summary, "incidentDateTime").text = xml_datetime(when)
    etree.SubElement(summary, "incidentDateTimeDescription").text = why

    urls = _urls(i.context.get("url") for i in plan.items)
    if urls:
        web = etree.SubElement(etree.SubElement(root, "internetDetails"), "webPageIncident")
        for url in urls:
            etree.SubElement(web, "url").text = url

    reporter = etree.SubElement(root, "reporter")
    reporter.append(settings.reporter.element("reportingPerson"))
    if settings.contact is not None and not settings.contact.empty:
        reporter.append(settings.contact.element("contactPerson"))
    _text(reporter, "companyTemplate", settings.company_template)
    _text(reporter, "termsOfService", settings.terms_of_service)
    _text(reporter, "legalURL", settings.legal_url)

    ctx = plan.items[0].context
    if any(ctx.get(k) for k in ("account_id", "account_handle", "profile_url")):
        person = etree.SubElement(root, "personOrUserReported")
        _text(person, "espIdentifier", ctx.get("account_id"))
        _text(person, "espService", settings.esp_service or ctx.get("platform"))
        _text(person, "screenName", ctx.get("account_handle"))
        for url in _urls(i.context.get("profile_url") for i in plan.items):
            etree.SubElement(person, "profileUrl").text = url
        seen: set[tuple] = set()
        for item in plan.items:
            for event in item.context.get("ip_events") or []:
                if not isinstance(event, Mapping):
                    continue
                key = (event.get("ip"), event.get("at"), event.get("event"))
                if key not in seen:
                    seen.add(key)
                    _ip_event(person, "ipCaptureEvent", event)

    ai = sum(1 for i in plan.items if i.is_ai_generated)
    info = (f"Prepared with tripwire {__version__}; tripwire reference {plan.key}. {len(plan.items)} file(s), each "
            f"confirmed by a person before reporting (decision ids {', '.join(map(str, plan.decision_ids))}).")
    if ai:
        info += f" {ai} file(s) assessed as generative-AI output (provenance evidence or reviewer decision)."
    etree.SubElement(root, "additionalInfo").text = info
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate(xml)
    return xml


def industry_code(item: ReviewedItem) -> str | None:
    """A1-B2 from the reviewer (context) or from a positive match in a bank using the NCMEC scheme."""
    code = str(item.extra.get("industry_classification") or "").strip().upper()
    if code in INDUSTRY_CODES:
        return code
    codes = [str(m.get("category")).upper() for m in item.record.get("matches") or []
             if isinstance(m, Mapping) and not m.get("negative") and str(m.get("category") or "").upper() in INDUSTRY_CODES
             and str(m.get("category_label") or "").startswith("NCMEC industry")]
    return min(codes) if codes else None


def file_name_of(item: ReviewedItem) -> str:
    name = item.path.replace("\\", "/").rsplit("/", 1)[-1]
    return name or f"item-{item.item_id}"


def build_file_details(item: ReviewedItem, settings: NcmecSettings, report_id: int, file_id: str) -> bytes:
    """The ``<fileDetails>`` document for ``/fileinfo`` (validated)."""
    root = _root("fileDetails")
    etree.SubElement(root, "reportId").text = str(int(report_id))
    etree.SubElement(root, "fileId").text = str(file_id)
    etree.SubElement(root, "fileName").text = file_name_of(item)
    _text(root, "originalFileName", item.extra.get("original_file_name"))
    uploaded = upload_time(item)
    if uploaded is not None:
        etree.SubElement(root, "uploadedToEspTimestamp").text = xml_datetime(uploaded)
    _text(root, "locationOfFile", item.extra.get("file_url") or item.context.get("url"))
    viewed = item.extra.get("file_viewed_by_esp")
    _bool(root, "fileViewedByEsp", bool(viewed) if viewed is not None else settings.file_viewed_by_esp)
    public = item.extra.get("publicly_available")
    _bool(root, "publiclyAvailable", bool(public) if public is not None else settings.publicly_available)
    etree.SubElement(root, "fileRelevance").text = "Reported"
    annotations = set(check_annotations(item.extra.get("file_annotations") or [], FILE_ANNOTATIONS))
    if item.is_ai_generated:
        annotations.add("generativeAi")
    if annotations:
        ann = etree.SubElement(root, "fileAnnotations")
        for name in FILE_ANNOTATIONS:
            if name in annotations:
                etree.SubElement(ann, name).text = "true"
    if settings.industry_classification:
        _text(root, "industryClassification", industry_code(item))
    for hash_type, value in (("MD5", item.md5), ("SHA1", item.sha1)):
        if value:
            h = etree.SubElement(root, "originalFileHash", hashType=hash_type)
            h.text = value
    uploads = [e for e in item.context.get("ip_events") or []
               if isinstance(e, Mapping) and _event_name(e.get("event")) == "Upload"]
    if uploads:
        _ip_event(root, "ipCaptureEvent", uploads[0])
    pairs = [("SHA256", item.sha256)]
    if item.pdq and (item.pdq_quality is None or item.pdq_quality >= MIN_PDQ_QUALITY):
        pairs.append(("PDQ", item.pdq))
        if item.pdq_quality is not None:
            pairs.append(("PDQ quality", str(item.pdq_quality)))
        if item.pdq_draft:
            pairs.append(("PDQ decode", PDQ_DRAFT_NOTE))
    pairs = [(n, v) for n, v in pairs if v]
    if pairs:
        details = etree.SubElement(root, "details", type="HASH")
        for name, value in pairs:
            nv = etree.SubElement(details, "nameValuePair")
            etree.SubElement(nv, "name").text = name
            etree.SubElement(nv, "value").text = value
    prov = item.provenance
    info: list[str] = []
    if prov.get("label") and prov.get("label") != "unknown":
        text = f"tripwire provenance: {prov.get('label')}"
        if prov.get("confidence"):
            text += f" ({prov.get('confidence')})"
        if prov.get("tool"):
            text += f", tool {prov.get('tool')}"
        basis = [str(b) for b in prov.get("basis") or []][:3]
        if basis:
            text += "; basis: " + "; ".join(basis)
        info.append(text)
    if item.video_details:
        info.append(item.video_details)
    if info:
        etree.SubElement(root, "additionalInfo").text = ". ".join(info)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate(xml)
    return xml


def dry_run_documents(plan: ReportPlan, settings: NcmecSettings) -> tuple[bytes, list[bytes]]:
    """The report and its fileDetails with placeholder ids (``reportId`` 0, ``fileId`` ``pending-N``)."""
    report = build_report(plan, settings)
    details = [build_file_details(item, settings, 0, f"pending-{n}") for n, item in enumerate(plan.items, 1)]
    return report, details
