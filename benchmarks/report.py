"""Benchmark outputs: result.json, report.md and matplotlib figures.

A benchmark run fills a ``BenchmarkReport`` and calls ``write_report(report, out_dir)``;
``validate_result`` is the schema check of result.json that every benchmark's tests share.

result.json schema (all keys required, nothing else):
- name, dataset, model, device, command: str; image_count: int ≥ 0; seed: int;
- rows: list of objects, one per setting, each with a unique str "key" (e.g. "case1/virnet")
  and further columns whose values are str (descriptors), finite numbers, "inf" (an infinite
  metric such as the PSNR of identical images) or null (metric not available, e.g. LPIPS);
- paper: object mapping a row key to null or to {column: published number} for columns of
  that row (the paper's number to compare with);
- notes: list of str.
NaN and −inf are rejected; +inf is written as the string "inf" so the file is strict JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

_STRING_FIELDS = ("name", "dataset", "model", "device", "command")
_INT_FIELDS = ("image_count", "seed")


@dataclasses.dataclass
class BenchmarkReport:
    """Everything a benchmark run reports; see the module docstring for the field types."""

    name: str
    dataset: str
    image_count: int
    model: str
    device: str
    seed: int
    command: str
    rows: list[dict]
    paper: dict[str, dict[str, float] | None]
    notes: list[str] = dataclasses.field(default_factory=list)


def _encode(value):
    """A row or paper value as JSON: floats as float, +inf as "inf", NaN and −inf rejected."""
    if isinstance(value, (str, type(None), bool)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, torch.Tensor):
        value = value.item()
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{value!r} is not a number, string or None") from err
    if math.isnan(value) or value == -math.inf:
        raise ValueError(f"metric value {value} is not allowed in a benchmark result")
    return "inf" if value == math.inf else value


def _decode(value):
    return math.inf if value == "inf" else value


def _is_metric(value) -> bool:
    if value == "inf":
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_cell(value) -> bool:
    return value is None or isinstance(value, str) or _is_metric(value)


def validate_result(result: dict) -> None:
    """Checks a result.json dict against the schema above; raises ValueError naming the fault."""
    if not isinstance(result, dict):
        raise ValueError("a benchmark result must be a JSON object")
    expected = {f.name for f in dataclasses.fields(BenchmarkReport)}
    missing, unknown = expected - result.keys(), result.keys() - expected
    if missing:
        raise ValueError(f"benchmark result lacks keys: {sorted(missing)}")
    if unknown:
        raise ValueError(f"benchmark result has unknown keys: {sorted(unknown)}")
    for field in _STRING_FIELDS:
        if not isinstance(result[field], str):
            raise ValueError(f"{field!r} must be a string, got {result[field]!r}")
    for field in _INT_FIELDS:
        if isinstance(result[field], bool) or not isinstance(result[field], int):
            raise ValueError(f"{field!r} must be an int, got {result[field]!r}")
    if result["image_count"] < 0:
        raise ValueError(f"'image_count' must be ≥ 0, got {result['image_count']}")
    notes = result["notes"]
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ValueError("'notes' must be a list of strings")
    columns = _validate_rows(result["rows"])
    _validate_paper(result["paper"], columns)


def _validate_rows(rows) -> dict[str, set[str]]:
    """Checks the rows; returns each row key's column names."""
    if not isinstance(rows, list) or not rows:
        raise ValueError("'rows' must be a non-empty list of objects")
    columns = {}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("key"), str):
            raise ValueError(f"each row must be an object with a string 'key', got {row!r}")
        if row["key"] in columns:
            raise ValueError(f"row key {row['key']!r} appears twice")
        for column, value in row.items():
            if not _is_cell(value):
                raise ValueError(f"row {row['key']!r}: {column!r} = {value!r} is not allowed")
        columns[row["key"]] = set(row)
    return columns


def _validate_paper(paper, columns: dict[str, set[str]]) -> None:
    if not isinstance(paper, dict):
        raise ValueError("'paper' must be an object mapping row keys to published numbers")
    for key, numbers in paper.items():
        if key not in columns:
            raise ValueError(f"'paper' names row {key!r}, which is not in 'rows'")
        if numbers is None:
            continue
        if not isinstance(numbers, dict):
            raise ValueError(f"paper[{key!r}] must be null or an object, got {numbers!r}")
        for column, value in numbers.items():
            if column not in columns[key] or column == "key":
                raise ValueError(f"paper[{key!r}] names column {column!r}, not in that row")
            if not _is_metric(value):
                raise ValueError(f"paper[{key!r}][{column!r}] = {value!r} is not a number")


def report_to_json(report: BenchmarkReport) -> dict:
    """The report as the validated result.json dict (+inf as "inf")."""
    result = dataclasses.asdict(report)
    result["rows"] = [{k: _encode(v) for k, v in row.items()} for row in report.rows]
    result["paper"] = {
        key: None if numbers is None else {k: _encode(v) for k, v in numbers.items()}
        for key, numbers in report.paper.items()
    }
    validate_result(result)
    return result


def _from_json(result: dict) -> BenchmarkReport:
    """A validated result.json dict back to a report ("inf" back to math.inf)."""
    fields = dict(result)
    fields["rows"] = [{k: _decode(v) for k, v in row.items()} for row in result["rows"]]
    fields["paper"] = {
        key: None if numbers is None else {k: _decode(v) for k, v in numbers.items()}
        for key, numbers in result["paper"].items()
    }
    return BenchmarkReport(**fields)


def read_report(path) -> BenchmarkReport:
    """Loads and validates a result.json written by ``write_report``."""
    result = json.loads(Path(path).read_text(encoding="utf-8"))
    validate_result(result)
    return _from_json(result)


def _format(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if value == math.inf:
        return "inf"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return f"{value:.3e}"


def _markdown_table(report: BenchmarkReport) -> list[str]:
    """Our numbers, with a "<column> (paper)" column after each column the paper reports."""
    columns = list(dict.fromkeys(column for row in report.rows for column in row))
    published = {
        column for numbers in report.paper.values() if numbers is not None for column in numbers
    }
    header = []
    for column in columns:
        header.append(column)
        if column in published:
            header.append(f"{column} (paper)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in report.rows:
        numbers = report.paper.get(row["key"]) or {}
        cells = []
        for column in columns:
            cells.append(_format(row[column]) if column in row else "")
            if column in published:
                cells.append(_format(numbers[column]) if column in numbers else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def report_markdown(report: BenchmarkReport) -> str:
    """report.md: a header with the run's facts, the results table, then the notes."""
    lines = [
        f"# {report.name}",
        "",
        f"- Dataset: {report.dataset}",
        f"- Images: {report.image_count}",
        f"- Model: {report.model}",
        f"- Device: {report.device}",
        f"- Seed: {report.seed}",
        f"- Command: `{report.command}`",
        "",
        "## Results",
        "",
        *_markdown_table(report),
    ]
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def write_report(report: BenchmarkReport, out_dir) -> dict[str, Path]:
    """Writes out_dir/result.json and out_dir/report.md; returns {"json": ..., "markdown": ...}.

    Validates first (ValueError on NaN, −inf or a schema fault), so nothing is written for
    an invalid report. Creates ``out_dir`` if needed.
    """
    result = report_to_json(report)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "result.json", "markdown": out_dir / "report.md"}
    text = json.dumps(result, indent=2, allow_nan=False, ensure_ascii=False)
    paths["json"].write_text(text + "\n", encoding="utf-8")
    paths["markdown"].write_text(report_markdown(_from_json(result)), encoding="utf-8")
    return paths


def _panel_array(image) -> np.ndarray:
    """A C×H×W tensor or an H×W×C / H×W numpy array -> H×W×3 or H×W numpy."""
    if torch.is_tensor(image):
        image = image.detach().to(device="cpu", dtype=torch.float64)
        image = image.permute(1, 2, 0).numpy() if image.ndim == 3 else image.numpy()
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3):
        return image
    raise ValueError(f"a panel must be H×W, H×W×3 (numpy) or C×H×W (tensor), got {image.shape}")


def comparison_grid(rows, path, crop: tuple[int, int, int, int] | None = None) -> Path:
    """A grid of labelled panels, one list of (label, image) per figure row, saved as PNG.

    Images: C×H×W tensors or H×W×C numpy arrays in [0, 1] (shown clipped, as RGB), or
    single-channel maps (H×W, 1×H×W; e.g. a σ map or a blur kernel), shown with a viridis
    colour map and a colour bar. crop = (top, left, height, width) zooms in: it applies to
    each panel with the same H×W as its row's first panel (so a 21×21 kernel beside the
    images stays whole). Rows may differ in length. Returns ``path``.
    """
    if not rows or not all(rows):
        raise ValueError("comparison_grid needs at least one non-empty row of panels")
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    figure = Figure(figsize=(2.4 * n_cols, 2.5 * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    for row, row_axes in zip(rows, axes):
        first_size = _panel_array(row[0][1]).shape[:2]
        for axis in row_axes:
            axis.set_axis_off()
        for axis, (label, image) in zip(row_axes, row):
            array = _panel_array(image)
            if crop is not None and array.shape[:2] == first_size:
                top, left, height, width = crop
                array = array[top : top + height, left : left + width]
            if array.size == 0:
                raise ValueError(f"crop {crop} leaves nothing of panel {label!r}")
            if array.ndim == 3:
                axis.imshow(np.clip(array, 0.0, 1.0), interpolation="nearest")
            else:
                shown = axis.imshow(array, cmap="viridis", interpolation="nearest")
                figure.colorbar(shown, ax=axis, shrink=0.8)
            axis.set_title(label, fontsize=9)
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path


def line_plot(x, series: dict[str, list[float]], xlabel: str, ylabel: str, path) -> Path:
    """One line with markers per series over ``x`` (e.g. PSNR vs noise level), saved as PNG.

    x: N values; series: label -> N values. Returns ``path``.
    """
    x = list(x)
    if not series:
        raise ValueError("line_plot needs at least one series")
    for label, values in series.items():
        if len(values) != len(x):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(x)} x values")
    figure = Figure(figsize=(5, 3.5), layout="constrained")
    axis = figure.subplots()
    for label, values in series.items():
        axis.plot(x, list(values), marker="o", label=label)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend()
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path
