"""A readable provenance report for one record: the verdict first, then why, then each piece of evidence.

Used by ``tripwire inspect``. Every value that came from the file (prompts, tool names, certificate fields) is
escaped before printing, so text inside an image cannot inject terminal markup. GPS coordinates are never
present in the evidence, only whether a position was recorded.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.padding import Padding
from rich.table import Table

from ..termsafe import safe_markup as escape  # control/bidi characters and markup, escaped

_LABEL_STYLE = {
    "ai_generated": "bold magenta",
    "ai_edited": "bold yellow",
    "camera_original": "bold green",
    "unknown": "bold white",
}
_STATE_STYLE = {"trusted": "green", "valid": "cyan", "invalid": "red", "remote_not_fetched": "yellow", "none": "dim"}
#: prompts are cut here on the terminal (the record keeps the bounded full text)
PROMPT_PREVIEW = 1200


def _s(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return escape(", ".join(str(v) for v in value))
    return escape(str(value))


def _table() -> Table:
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _c2pa(entry: dict[str, Any], table: Table) -> None:
    state = entry.get("state")
    style = _STATE_STYLE.get(state, "white") if isinstance(state, str) else "white"
    table.add_row("state", f"[{style}]{_s(state)}[/]")
    if entry.get("codes"):
        table.add_row("codes", _s(entry["codes"]))
    for key, label in (
        ("claim_generator", "claim generator"),
        ("title", "title"),
        ("digital_source_types", "source types"),
        ("software_agents", "software agents"),
        ("remote_url", "remote manifest"),
        ("note", "note"),
        ("error", "error"),
        ("skipped", "skipped"),
    ):
        if entry.get(key):
            table.add_row(label, _s(entry[key]))
    signer = entry.get("signer") or {}
    if any(signer.values()):
        table.add_row("signer", _s(f"{signer.get('common_name') or '?'} ({signer.get('issuer') or '?'}), {signer.get('alg') or '?'}, {signer.get('time') or 'no time'}"))
    for action in (entry.get("actions") or [])[:12]:
        parts = [action.get("action", "?")]
        if action.get("digital_source_type"):
            parts.append(action["digital_source_type"])
        if action.get("software_agent"):
            parts.append(f"by {action['software_agent']}")
        parts.append(f"[{action.get('manifest', '?')}]")
        table.add_row("action", _s(" ".join(parts)))
    for ing in (entry.get("ingredients") or [])[:8]:
        table.add_row("ingredient", _s(f"{ing.get('title')} ({ing.get('relationship')}, {'with' if ing.get('has_manifest') else 'no'} manifest)"))


def _exif(entry: dict[str, Any], table: Table) -> None:
    if entry.get("not_camera"):
        table.add_row("not a camera", _s(entry["not_camera"]))
    for key, label in (
        ("make", "make"),
        ("model", "model"),
        ("body_serial", "body serial"),
        ("lens", "lens"),
        ("software", "software"),
        ("capture_time", "capture time"),
        ("orientation", "orientation"),
    ):
        if entry.get(key) is not None:
            table.add_row(label, _s(entry[key]))
    table.add_row("GPS position", "recorded (coordinates not shown)" if entry.get("gps_present") else "none")
    table.add_row("maker note", _s(entry.get("maker_note_present")))
    thumb = entry.get("thumbnail") or {}
    if thumb.get("present"):
        text = f"{thumb.get('width', '?')}x{thumb.get('height', '?')}"
        if thumb.get("consistent") is True:
            text += f", matches the image (r={thumb.get('correlation')})"
        elif thumb.get("consistent") is False:
            text += f", [red]does not match the image[/] (r={thumb.get('correlation')})"
        table.add_row("thumbnail", text)
    else:
        table.add_row("thumbnail", "none")


#: LoRAs / embeddings listed on the terminal (the record keeps all, up to the parser's cap)
REF_ROWS = 24


def _hashes(ref: dict[str, Any]) -> str:
    hashes = ref.get("hashes")
    if not isinstance(hashes, dict) or not hashes:
        return "no hash"
    return ", ".join(f"{form} {digest}" for form, digest in hashes.items())


def _ref_text(ref: Any, weighted: bool = False) -> str | None:
    """``name ×weight (form digest, ...)`` for one model reference."""
    if not isinstance(ref, dict):
        return None
    text = str(ref.get("name") or "(unnamed)")
    if weighted:
        weight = ref.get("weight")
        text += f" ×{weight:g}" if isinstance(weight, int | float) else " ×?"
    text += f" ({_hashes(ref)})"
    if ref.get("air"):
        text += f" {ref['air']}"
    return text


def _models(entry: dict[str, Any], table: Table) -> None:
    """The checkpoint, VAE, each LoRA and embedding with its hash forms, and what was dropped."""
    for key, label in (("model_ref", "model ref"), ("vae", "vae")):
        text = _ref_text(entry.get(key))
        if text:
            table.add_row(label, _s(text))
    for key, label in (("loras", "lora"), ("embeddings", "embedding")):
        value = entry.get(key)
        refs: list[Any] = value if isinstance(value, list) else []
        for ref in refs[:REF_ROWS]:
            text = _ref_text(ref, weighted=key == "loras")
            if text:
                table.add_row(label, _s(text))
        if len(refs) > REF_ROWS:
            table.add_row(label, f"… {len(refs) - REF_ROWS} more in the record")
    for note in (entry.get("model_notes") or [])[:8]:
        table.add_row("model note", _s(note))


def _generator(entry: dict[str, Any], generator: dict[str, Any] | None, table: Table) -> None:
    for key in ("tool", "tool_version", "model", "model_hash", "seed", "steps", "sampler", "cfg", "size", "mode", "carrier", "job_id", "error"):
        if entry.get(key) is not None:
            table.add_row(key.replace("_", " "), _s(entry[key]))
    _models(entry, table)
    signature = entry.get("signature") or {}
    if signature.get("present"):
        ok = signature.get("verified")
        table.add_row("signature", "[green]verifies[/]" if ok else f"[red]does not verify[/] {_s(signature.get('error') or '')}")
    if generator is not None and generator.get("carrier") == entry.get("carrier") and generator.get("tool") == entry.get("tool"):
        for key in ("prompt", "negative_prompt", "prompt_template"):
            text = generator.get(key)
            if text:
                cut = text if len(text) <= PROMPT_PREVIEW else text[:PROMPT_PREVIEW] + " …"
                table.add_row(key.replace("_", " "), _s(cut))


def _generic(entry: dict[str, Any], table: Table) -> None:
    for key, value in entry.items():
        if key == "source" or value is None or isinstance(value, dict):
            continue
        table.add_row(key.replace("_", " "), _s(value))


def _watermark_line(entries: list[dict[str, Any]]) -> str:
    """Watermark checks that found nothing, as one line:
    ``watermark: sd1, sd2 not detected; sdxl not checked (size … is not a multiple of 8 …)``."""
    checked = [str(e.get("scheme") or "?") for e in entries if not e.get("skipped")]
    skipped = [e for e in entries if e.get("skipped")]
    parts = [f"{', '.join(checked)} not detected"] if checked else []
    if skipped:
        reasons = "; ".join(dict.fromkeys(str(e["skipped"]) for e in skipped))
        parts.append(f"{', '.join(str(e.get('scheme') or '?') for e in skipped)} not checked ({reasons})")
    return "watermark: " + "; ".join(parts)


def render_provenance(record: dict[str, Any], console: Console) -> None:
    """Print the provenance report of one item record (verdict, basis, conflicts, then every evidence entry)."""
    provenance = record.get("provenance")
    if not isinstance(provenance, dict):
        console.print("[bold]provenance[/]: not analysed (not an image, or the image could not be read)")
        return
    label = provenance.get("label") or "unknown"
    head = f"[bold]provenance[/]: [{_LABEL_STYLE.get(label, 'bold')}]{escape(label)}[/]"
    if provenance.get("confidence"):
        head += f" ({escape(str(provenance['confidence']))})"
    if provenance.get("tool"):
        head += f" — {escape(str(provenance['tool']))}"
    console.print(head)
    reason = provenance.get("reason")
    if reason and (label == "unknown" or provenance.get("confidence") == "supporting"):
        console.print(f"  because {escape(str(reason))}")  # why no origin, or why the verdict is weak
    else:
        for line in provenance.get("basis") or []:
            console.print(f"  because {escape(str(line))}")
    for edit in provenance.get("edits") or []:
        console.print(f"  [yellow]edited[/]: {escape(str(edit))}")
    for conflict in provenance.get("conflicts") or []:
        detail = conflict.get("detail") if isinstance(conflict, dict) else conflict
        console.print(f"  [red]conflict[/]: {escape(str(detail))}")
    generator = record.get("generator") if isinstance(record.get("generator"), dict) else None
    evidence = [e for e in provenance.get("evidence") or [] if isinstance(e, dict)]
    idle = [e for e in evidence if e.get("source") == "watermark" and not e.get("detected")]
    if idle:
        console.print(f"  [dim]{escape(_watermark_line(idle))}[/]")
    for entry in evidence:
        source = str(entry.get("source", "?"))
        if entry in idle:
            continue
        table = _table()
        if source == "c2pa":
            _c2pa(entry, table)
        elif source == "exif":
            _exif(entry, table)
        elif source == "generator":
            _generator(entry, generator, table)
        else:
            _generic(entry, table)
        console.print(f"  [bold underline]{escape(source)}[/]")
        console.print(Padding(table, (0, 0, 0, 4)))
    for note in provenance.get("notes") or []:
        console.print(f"  [dim]note: {escape(str(note))}[/]")
