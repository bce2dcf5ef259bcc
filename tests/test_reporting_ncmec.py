"""CyberTipline report XML: built from reviewed fixture items, valid against NCMEC's XSD, nothing without a decision."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from helpers import tripwire
from lxml import etree
from reporting_helpers import REPORTER_TOML, add_context, context_for, decide, media_folder, store_files

from tripwire.config import Config
from tripwire.errors import UsageError
from tripwire.report.ncmec import (
    NcmecSettings,
    ReportValidationError,
    build_file_details,
    build_report,
    dry_run_documents,
    incident_types,
    plan_reports,
    validate,
    xsd_path,
)
from tripwire.report.reviewed import NotDecided, reviewed_items
from tripwire.store.db import open_db

SPEC_XSD = Path(__file__).resolve().parents[1].parent / "shared" / "specs" / "ncmec" / "cyber_tipline.xsd"


def spec_schema() -> etree.XMLSchema:
    """NCMEC's schema as published (../shared/specs), independent of the copy tripwire bundles."""
    return etree.XMLSchema(etree.parse(str(SPEC_XSD)))


def settings(extra: str = "") -> NcmecSettings:
    text = REPORTER_TOML.replace("[reporting.ncmec]\n", "[reporting.ncmec]\n" + extra, 1)
    return NcmecSettings.from_config(Config(sections=tomllib.loads(text)), environ={})


@pytest.fixture
def case(db_url, tmp_path):
    db = open_db(db_url)
    files = media_folder(tmp_path / "media")
    ids = store_files(db, "c1", list(files.values()))
    by = {k: ids[str(p)] for k, p in files.items()}
    for n, key in enumerate(("ai", "camera")):
        add_context(db, by[key], **context_for(n))
    decide(db, by["ai"], "confirmed_abuse")
    decide(db, by["camera"], "confirmed_abuse")
    yield db, by, files
    db.dispose()


def _items(db, **kw):
    with db.session() as s:
        return reviewed_items(s, **kw)


def test_bundled_schema_is_ncmecs():
    assert xsd_path().read_bytes() == SPEC_XSD.read_bytes()
    assert "Child Pornography (possession, manufacture, and distribution)" in incident_types()


def test_report_and_file_details_validate_and_carry_the_facts(case):
    db, by, files = case
    items = _items(db, case="c1")
    assert sorted(i.item_id for i in items) == sorted([by["ai"], by["camera"]])  # the undecided file is not there
    plans = plan_reports(items)
    assert len(plans) == 1  # both posted by the same account: one report
    report, details = dry_run_documents(plans[0], settings())
    xsd = spec_schema()
    doc = etree.fromstring(report)
    assert xsd.validate(doc), xsd.error_log
    assert doc.findtext("incidentSummary/incidentType") == "Child Pornography (possession, manufacture, and distribution)"
    assert doc.findtext("incidentSummary/incidentDateTime") == "2026-11-20T10:00:00+00:00"  # the platform's upload time
    assert doc.find("incidentSummary/reportAnnotations") is None  # nobody asserted any
    assert [u.text for u in doc.findall("internetDetails/webPageIncident/url")] == [
        "https://share.example.org/p/0", "https://share.example.org/p/1"]
    assert doc.findtext("reporter/reportingPerson/email") == "trust@example.org"
    person = doc.find("personOrUserReported")
    assert person.findtext("espIdentifier") == "acct-1"
    assert person.findtext("screenName") == "handle_acct-1"
    assert person.findtext("profileUrl") == "https://share.example.org/u/acct-1"
    events = {(e.findtext("ipAddress"), e.findtext("eventName")) for e in person.findall("ipCaptureEvent")}
    assert events == {("203.0.113.5", "Upload"), ("198.51.100.7", "Login")}
    assert plans[0].key in doc.findtext("additionalInfo")

    by_name = {etree.fromstring(d).findtext("fileName"): etree.fromstring(d) for d in details}
    for d in by_name.values():
        assert xsd.validate(d), xsd.error_log
    ai, camera = by_name[files["ai"].name], by_name[files["camera"].name]
    item = {i.item_id: i for i in items}
    assert ai.findtext("fileAnnotations/generativeAi") == "true"  # provenance says ai_generated
    assert camera.find("fileAnnotations") is None
    hashes = {h.get("hashType"): h.text for h in camera.findall("originalFileHash")}
    assert hashes == {"MD5": item[by["camera"]].md5, "SHA1": item[by["camera"]].sha1}
    assert camera.find("industryClassification") is None  # not configured
    assert camera.find("fileViewedByEsp") is None  # never claimed unless stated
    pairs = {nv.findtext("name"): nv.findtext("value") for nv in camera.findall("details/nameValuePair")}
    assert pairs["SHA256"] == item[by["camera"]].sha256 and pairs["PDQ"] == item[by["camera"]].pdq
    assert "camera_original" in camera.findtext("additionalInfo")


def test_ai_generated_decision_sets_generative_ai_even_without_provenance(case):
    db, by, _ = case
    decide(db, by["camera"], "ai_generated", note="reviewer judged it synthetic")
    item = _items(db, item_ids=[by["camera"]])[0]
    doc = etree.fromstring(build_file_details(item, settings(), 12, "f1"))
    assert doc.findtext("fileAnnotations/generativeAi") == "true"


def test_nothing_is_built_without_a_recorded_decision(case):
    db, by, _ = case
    with pytest.raises(NotDecided) as exc:
        _items(db, item_ids=[by["synth"]])
    assert "no recorded decision" in str(exc.value)
    decide(db, by["synth"], "needs_escalation")
    with pytest.raises(NotDecided):
        _items(db, item_ids=[by["synth"]])
    decide(db, by["ai"], "not_abuse")  # a newer decision supersedes the confirmation
    with pytest.raises(NotDecided) as exc:
        _items(db, item_ids=[by["ai"]])
    assert "not_abuse" in str(exc.value)
    assert [i.item_id for i in _items(db, case="c1")] == [by["camera"]]


def test_annotations_and_industry_classification_only_when_asserted_or_configured(case):
    db, by, _ = case
    items = _items(db, item_ids=[by["camera"]])
    with pytest.raises(UsageError):
        plan_reports(items, annotations=["not-an-annotation"])
    plan = plan_reports(items, annotations=["csamsolicitation"], escalate="ongoing risk")[0]
    doc = etree.fromstring(build_report(plan, settings()))
    assert doc.findtext("incidentSummary/reportAnnotations/csamSolicitation") == "true"
    assert doc.findtext("incidentSummary/escalateToHighPriority") == "ongoing risk"
    item = items[0]
    item.context["extra"] = {"industry_classification": "b1", "file_viewed_by_esp": True}
    plain = etree.fromstring(build_file_details(item, settings(), 1, "f"))
    assert plain.find("industryClassification") is None  # no MOU configured
    assert plain.findtext("fileViewedByEsp") == "true"
    mou = etree.fromstring(build_file_details(item, settings("industry_classification = true\n"), 1, "f"))
    assert mou.findtext("industryClassification") == "B1"
    assert spec_schema().validate(mou)


def test_report_without_platform_context_still_validates(db_url, tmp_path):
    db = open_db(db_url)
    files = media_folder(tmp_path / "m")
    ids = store_files(db, "bare", [files["synth"]])
    decide(db, ids[str(files["synth"])], "confirmed_abuse")
    items = _items(db, case="bare")
    report, details = dry_run_documents(plan_reports(items)[0], settings())
    assert spec_schema().validate(etree.fromstring(report))
    doc = etree.fromstring(report)
    assert doc.find("personOrUserReported") is None and doc.find("internetDetails") is None
    assert "tripwire first processed" in doc.findtext("incidentSummary/incidentDateTimeDescription")
    db.dispose()


def test_invalid_configuration_is_caught_before_anything_is_sent(case):
    db, by, _ = case
    bad = settings().reporter.__class__(first_name="A", email=("a@example.org",), address={"country": "Atlantis"})
    s = settings()
    s.reporter = bad
    with pytest.raises(ReportValidationError) as exc:
        build_report(plan_reports(_items(db, item_ids=[by["camera"]]))[0], s)
    assert "country" in str(exc.value)
    with pytest.raises(UsageError):
        NcmecSettings.from_config(Config(sections={"reporting": {"ncmec": {"password": "x"}}}), environ={})
    with pytest.raises(UsageError):
        NcmecSettings.from_config(Config(sections={"reporting": {"ncmec": {"incident_type": "Other"}}}), environ={})
    with pytest.raises(ReportValidationError):
        validate(b"<report><incidentSummary/></report>")


def test_cli_dry_run_prints_valid_xml_and_refuses_undecided(case, tmp_path):
    db, by, _ = case
    if db.dialect != "sqlite":
        pytest.skip("the command line runs on SQLite here; the library tests above cover PostgreSQL")
    cfg = tmp_path / "tw.toml"
    cfg.write_text(REPORTER_TOML, encoding="utf-8")
    env = {**os.environ, "TRIPWIRE_CONFIG": str(cfg)}
    env.pop("TRIPWIRE_NCMEC_PASSWORD", None)
    proc = tripwire("report", "ncmec", "c1", "--db", db.url, "--out", str(tmp_path / "xml"), env=env)
    assert proc.returncode == 0, proc.stderr
    doc = etree.fromstring(proc.stdout.encode("utf-8"))
    assert spec_schema().validate(doc)
    written = sorted(p.name for p in (tmp_path / "xml").iterdir())
    assert written == ["report-1-file-1.xml", "report-1-file-2.xml", "report-1.xml"]
    assert "credentials" in proc.stderr  # a dry run says what --submit would still need
    refused = tripwire("report", "ncmec", str(by["synth"]), "--db", db.url, env=env)
    assert refused.returncode == 2 and "no recorded human decision" in refused.stderr.replace("\n", " ")
