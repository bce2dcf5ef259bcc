"""C2PA Content Credentials: is there a manifest, does it validate, is its signer trusted, and what does it say.

Reading goes through c2pa-python (the CAI's own Rust SDK), never through a home-made JUMBF parser: validation
is subtle and the SDK is the reference. Everything runs offline: remote manifests and OCSP are never fetched
(a scan must not phone out, and must not hang on an unreachable host), so a file whose manifest lives in the
cloud is reported as ``remote_not_fetched`` with its URL.

States (the ``state`` of the evidence entry):

- ``none``: no manifest in the file (or a format the SDK cannot carry manifests in);
- ``valid``: the manifest validates, but its signing certificate does not chain to a configured trust anchor;
- ``trusted``: valid, and the signer chains to an anchor in ``[provenance] trust_anchors`` (PEM bundle);
- ``invalid``: a manifest is present and fails validation (``codes`` says why: ``assertion.dataHash.mismatch``
  means the pixels changed after signing, ``claimSignature.mismatch`` a bad signature). This is evidence about
  tampering, never about origin;
- ``remote_not_fetched``: the manifest is remote and was not fetched.
"""

from __future__ import annotations

import io
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .xmp import label_for_source_type, normalise_source_type

#: validation codes that do not make a manifest invalid (the SDK lists them next to the real failures)
TRUST_CODES = {"signingCredential.untrusted"}
_MAX_ACTIONS = 64
_MAX_INGREDIENTS = 32
_MAX_DEPTH = 16


@dataclass(frozen=True)
class C2paSettings:
    """Trust configuration: PEM text (not paths) so that a settings object is hashable and picklable."""

    trust_anchors_pem: str | None = None
    allowed_list_pem: str | None = None

    @classmethod
    def from_config(cls, section: dict[str, Any] | None, base: Path | None = None) -> "C2paSettings":
        """Build from ``[provenance]``: ``trust_anchors = "anchors.pem"``, ``allowed_list = "allowed.pem"``."""
        section = section or {}

        def read(key: str) -> str | None:
            value = section.get(key)
            if not value:
                return None
            path = Path(value).expanduser()
            if base is not None and not path.is_absolute():
                path = base / path
            from ..errors import UsageError

            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"provenance.{key}: cannot read {path}: {exc}") from exc
            if "-----BEGIN CERTIFICATE-----" not in text:
                raise UsageError(f"provenance.{key}: {path} holds no PEM certificate")
            return text

        return cls(trust_anchors_pem=read("trust_anchors"), allowed_list_pem=read("allowed_list"))


_contexts: dict[C2paSettings, Any] = {}
_lock = threading.Lock()


def _context(settings: C2paSettings) -> Any:  # a c2pa.Context: the SDK ships no type information
    """One SDK Context per trust configuration and process (creating one parses the PEM bundle)."""
    import c2pa

    with _lock:
        ctx = _contexts.get(settings)
        if ctx is None:
            config: dict[str, Any] = {
                "verify": {
                    "remote_manifest_fetch": False,
                    "ocsp_fetch": False,
                    "verify_after_reading": True,
                    "verify_trust": True,
                },
                "core": {"allowed_network_hosts": []},
            }
            trust: dict[str, str] = {}
            if settings.trust_anchors_pem:
                trust["user_anchors"] = settings.trust_anchors_pem
            if settings.allowed_list_pem:
                trust["allowed_list"] = settings.allowed_list_pem
            if trust:
                config["trust"] = trust
            ctx = c2pa.Context.from_dict(config)
            _contexts[settings] = ctx
        return ctx


def _agent_name(agent: Any) -> str | None:
    if isinstance(agent, str):
        return agent[:200] or None
    if isinstance(agent, dict):
        name = agent.get("name")
        version = agent.get("version")
        if isinstance(name, str):
            return f"{name} {version}".strip()[:200] if isinstance(version, str) else name[:200]
    return None


def _generator_name(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict):
        return _agent_name(info[0])
    gen = manifest.get("claim_generator")
    return gen[:200] if isinstance(gen, str) else None


def _actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict):
            continue
        label = str(assertion.get("label", ""))
        if not label.startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            if not isinstance(action, dict):
                continue
            parameters = action.get("parameters")
            params = parameters if isinstance(parameters, dict) else {}
            entry = {
                "action": str(action.get("action", ""))[:100],
                "digital_source_type": normalise_source_type(action.get("digitalSourceType")),
                "software_agent": _agent_name(action.get("softwareAgent")),
                "description": (params.get("description") if isinstance(params.get("description"), str) else None),
            }
            out.append({k: v for k, v in entry.items() if v})
            if len(out) >= _MAX_ACTIONS:
                return out
    return out


def _origin(store: dict[str, Any]) -> dict[str, Any]:
    """Walk the provenance chain from the active manifest to find how the content was first made.

    Returns the digital source type of the first ``c2pa.created`` action found (active manifest first, then
    its ingredients' manifests, parents before components), the tool that made it, and every AI source
    type seen on the way (an AI edit of a captured photo is ``ai_edited``, not ``ai_generated``).
    """
    manifests = store.get("manifests") or {}
    active = store.get("active_manifest")
    seen: set[str] = set()
    created: list[tuple[int, str, str | None, str]] = []  # (depth, dst, agent, manifest)
    edits: list[tuple[str, str | None]] = []

    def walk(label: Any, depth: int) -> None:
        if not isinstance(label, str) or label in seen or depth > _MAX_DEPTH:
            return
        seen.add(label)
        manifest = manifests.get(label)
        if not isinstance(manifest, dict):
            return
        for action in _actions(manifest):
            dst = action.get("digital_source_type")
            agent = action.get("software_agent") or _generator_name(manifest)
            if action.get("action") == "c2pa.created" and dst:
                created.append((depth, dst, agent, label))
            elif dst and label_for_source_type(dst) in ("ai_generated", "ai_edited"):
                edits.append((dst, agent))
        ingredients = [i for i in manifest.get("ingredients") or [] if isinstance(i, dict)]
        ingredients.sort(key=lambda i: 0 if i.get("relationship") == "parentOf" else 1)
        for ing in ingredients[:_MAX_INGREDIENTS]:
            walk(ing.get("active_manifest"), depth + 1)

    walk(active, 0)
    created.sort(key=lambda c: c[0])
    ai_created = [c for c in created if label_for_source_type(c[1]) == "ai_generated"]
    capture = [c for c in created if label_for_source_type(c[1]) == "camera_original"]
    if ai_created and not capture:
        _, dst, agent, label = ai_created[0]
        return {"implies": "ai_generated", "digital_source_type": dst, "tool": agent, "manifest": label}
    composite_created = [c for c in created if label_for_source_type(c[1]) == "ai_edited"]
    if ai_created or edits or composite_created:
        if edits:
            dst, agent = edits[0]
        else:
            first = (ai_created or composite_created)[0]
            dst, agent = first[1], first[2]
        return {"implies": "ai_edited", "digital_source_type": dst, "tool": agent}
    if capture:
        _, dst, agent, label = capture[0]
        return {"implies": "camera_original", "digital_source_type": dst, "tool": agent, "manifest": label}
    if created:
        return {"implies": None, "digital_source_type": created[0][1], "tool": created[0][2]}
    return {"implies": None}


def _codes(store: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(failure codes, informational codes) over the active manifest and ingredient deltas."""
    failures: list[str] = []
    infos: list[str] = []
    for status in store.get("validation_status") or []:
        if isinstance(status, dict) and isinstance(status.get("code"), str):
            failures.append(status["code"])
    results = store.get("validation_results") or {}
    groups = [results.get("activeManifest") or {}]
    for delta in results.get("ingredientDeltas") or []:
        if isinstance(delta, dict):
            groups.append(delta.get("validationDeltas") or {})
    for group in groups:
        for status in group.get("failure") or []:
            if isinstance(status, dict) and isinstance(status.get("code"), str):
                failures.append(status["code"])
        for status in group.get("informational") or []:
            if isinstance(status, dict) and isinstance(status.get("code"), str):
                infos.append(status["code"])
    return sorted(set(failures)), sorted(set(infos))


def summarise(store: dict[str, Any], state_raw: str | None) -> dict[str, Any]:
    """The evidence entry for a manifest store the SDK read (pure function of its JSON report)."""
    failures, infos = _codes(store)
    raw = (state_raw or "").lower()
    if raw == "trusted":
        state = "trusted"
    elif raw == "valid":
        state = "valid"
    elif raw == "invalid":
        state = "invalid"
    else:  # older SDKs report no state: decide from the codes
        state = "invalid" if set(failures) - TRUST_CODES else "valid"
    manifests = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) if isinstance(manifests, dict) else None
    active = active if isinstance(active, dict) else {}
    signature_info = active.get("signature_info")
    sig = signature_info if isinstance(signature_info, dict) else {}
    ingredients = []
    for ing in (active.get("ingredients") or [])[:_MAX_INGREDIENTS]:
        if isinstance(ing, dict):
            ingredients.append(
                {
                    "title": str(ing.get("title", ""))[:200],
                    "relationship": ing.get("relationship"),
                    "format": ing.get("format"),
                    "has_manifest": bool(ing.get("active_manifest")),
                }
            )
    actions = []
    for label, manifest in list(manifests.items())[:_MAX_INGREDIENTS]:
        if isinstance(manifest, dict):
            for action in _actions(manifest):
                actions.append({**action, "manifest": "active" if label == active_label else "ingredient"})
    source_types = sorted({a["digital_source_type"] for a in actions if a.get("digital_source_type")})
    agents = sorted({a["software_agent"] for a in actions if a.get("software_agent")})
    origin = _origin(store)
    return {
        "source": "c2pa",
        "state": state,
        "codes": failures,
        "informational": infos,
        "claim_generator": _generator_name(active),
        "title": str(active.get("title", ""))[:200] or None,
        "signer": {
            "issuer": sig.get("issuer"),
            "common_name": sig.get("common_name"),
            "alg": sig.get("alg"),
            "serial": sig.get("cert_serial_number"),
            "time": sig.get("time"),
        },
        "manifests": len(manifests) if isinstance(manifests, dict) else 0,
        "actions": actions[:_MAX_ACTIONS],
        "digital_source_types": source_types,
        "software_agents": agents,
        "ingredients": ingredients,
        "implies": origin.get("implies"),
        "origin": origin,
    }


_URL = re.compile(r"https?://\S+")


def c2pa_evidence(data: bytes | None, media_type: str, settings: C2paSettings | None = None) -> dict[str, Any]:
    """Read and validate the manifest of one file; always returns an entry, never raises, never fetches."""
    settings = settings or C2paSettings()
    if data is None:
        return {"source": "c2pa", "state": "none", "codes": [], "skipped": "file larger than the decode cap"}
    if not data:
        return {"source": "c2pa", "state": "none", "codes": []}
    try:
        import c2pa
    except ImportError:  # pragma: no cover - c2pa-python is a runtime dependency
        return {"source": "c2pa", "state": "none", "codes": [], "skipped": "c2pa-python is not installed"}
    try:
        ctx = _context(settings)
        with c2pa.Reader(media_type or None, io.BytesIO(data), context=ctx) as reader:
            store = json.loads(reader.json())
            state_raw = store.get("validation_state")
        return summarise(store, state_raw)
    except Exception as exc:
        message = str(exc)
        kind = type(exc).__name__
        if "ManifestNotFound" in kind or message.startswith("ManifestNotFound"):
            return {"source": "c2pa", "state": "none", "codes": []}
        if message.startswith("Remote") or "RemoteManifest" in kind:
            url = _URL.search(message)
            return {
                "source": "c2pa",
                "state": "remote_not_fetched",
                "codes": [],
                "remote_url": url.group(0) if url else None,
                "note": "the manifest is stored remotely; tripwire never fetches it (offline by design)",
            }
        if "NotSupported" in kind or message.startswith("NotSupported"):
            return {"source": "c2pa", "state": "none", "codes": [], "note": f"c2pa cannot read {media_type or 'this type'}"}
        has_jumbf = b"jumb" in data and b"c2pa" in data
        if not has_jumbf:
            # the SDK could not parse the container at all, and there is no manifest box to speak of
            return {"source": "c2pa", "state": "none", "codes": [], "note": f"container not parsed by c2pa: {message[:200]}"}
        code = "manifest.prerelease" if "prerelease" in message.lower() else "manifest.unreadable"
        return {
            "source": "c2pa",
            "state": "invalid",
            "codes": [code],
            "error": message[:500],
            "implies": None,
        }
