"""``tripwire detector ...``: calibrate an optional ONNX "AI-generated" pixel classifier on labelled folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import err, fail, get_config

detector_app = typer.Typer(
    help="Optional ONNX pixel classifier (supporting evidence only): calibrate it on your own labelled images.",
    no_args_is_help=True,
)


@detector_app.command("evaluate")
def evaluate_cmd(
    real: Path = typer.Option(..., "--real", exists=True, file_okay=False, help="Folder of real (camera) images."),
    synthetic: Path = typer.Option(..., "--synthetic", exists=True, file_okay=False, help="Folder of AI-generated images."),
    model: Optional[Path] = typer.Option(None, "--model", help="ONNX model (default: [provenance.detector] model)."),
    fpr: float = typer.Option(0.01, "--fpr", min=0.0, max=1.0, help="False-positive rate on real images to calibrate the threshold for."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML configuration file (input size, normalisation)."),
) -> None:
    """Score both folders; report ROC AUC and the threshold that keeps false positives at --fpr."""
    from ..termsafe import console
    from rich.table import Table

    from ..errors import UsageError
    from ..provenance.detector import DetectorConfig, OnnxDetector, evaluate

    cfg = get_config(config)
    try:
        section = (cfg.sections.get("provenance") or {}).get("detector") or {}
        det_cfg = DetectorConfig.from_section(section, model=str(model) if model else None)
        if det_cfg is None:
            raise UsageError("no model: pass --model or set [provenance.detector] model in the config")
        result = evaluate(OnnxDetector(det_cfg), real, synthetic, fpr)
    except UsageError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    table = Table(title=f"detector {result['model']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("real images", str(result["n_real"]))
    table.add_row("synthetic images", str(result["n_synthetic"]))
    table.add_row("ROC AUC", f"{result['roc_auc']:.4f}")
    table.add_row("target FPR", f"{result['target_fpr']:.4f}")
    table.add_row("threshold", f"{result['threshold']:.6f}")
    table.add_row("FPR at threshold", f"{result['fpr']:.4f}")
    table.add_row("TPR at threshold", f"{result['tpr']:.4f}")
    table.add_row("unreadable files", str(len(result["failures"])))
    console().print(table)
    for failure in result["failures"][:20]:
        err.print(f"skipped {failure}", highlight=False, markup=False)
