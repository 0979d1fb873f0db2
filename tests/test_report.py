import copy
import json
import math

import numpy as np
import pytest
import torch

from benchmarks.report import (
    BenchmarkReport,
    comparison_grid,
    line_plot,
    read_report,
    report_to_json,
    validate_result,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _report(**changes) -> BenchmarkReport:
    fields = dict(
        name="Table 2: AWGN denoising",
        dataset="CBSD68 (/data/CBSD68)",
        image_count=68,
        model="virnet-denoise-synthetic",
        device="cpu",
        seed=1000,
        command="python -m benchmarks.awgn --sigma 15 25",
        rows=[
            {"key": "sigma15/virnet", "method": "VIRNet", "psnr": 34.1234, "ssim": 0.9301},
            {"key": "sigma25/virnet", "method": "VIRNet", "psnr": 31.5, "ssim": 0.88},
            {"key": "clean/identity", "method": "identity", "psnr": math.inf, "lpips": None},
        ],
        paper={"sigma15/virnet": {"psnr": 34.27}, "sigma25/virnet": {"psnr": 31.65},
               "clean/identity": None},
        notes=["LPIPS: n/a (lpips weights not available)"],
    )
    fields.update(changes)
    return BenchmarkReport(**fields)


def _strict_json(text: str):
    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_write_report_writes_strict_json_that_round_trips(tmp_path):
    report = _report()
    paths = write_report(report, tmp_path / "out")
    assert set(paths) == {"json", "markdown"}
    assert paths["json"] == tmp_path / "out" / "result.json"
    result = _strict_json(paths["json"].read_text())
    validate_result(result)
    assert result["rows"][2]["psnr"] == "inf"
    assert result["seed"] == 1000 and result["paper"]["sigma15/virnet"] == {"psnr": 34.27}
    assert read_report(paths["json"]) == report


def test_numpy_and_tensor_metrics_are_written_as_plain_numbers(tmp_path):
    rows = [{"key": "a", "psnr": np.float32(30.5), "ssim": torch.tensor(0.75), "n": np.int64(3)}]
    result = _strict_json(write_report(_report(rows=rows, paper={}), tmp_path)["json"].read_text())
    assert result["rows"] == [{"key": "a", "psnr": 30.5, "ssim": 0.75, "n": 3}]


def test_nan_or_minus_inf_metrics_are_refused_before_writing(tmp_path):
    for bad in (math.nan, -math.inf):
        with pytest.raises(ValueError, match="not allowed"):
            write_report(_report(rows=[{"key": "a", "psnr": bad}], paper={}), tmp_path)
    assert not any(tmp_path.iterdir())


def test_validate_result_rejects_schema_faults():
    good = report_to_json(_report())
    validate_result(good)

    def broken(edit):
        result = copy.deepcopy(good)
        edit(result)
        return result

    faults = {
        "lacks keys": lambda r: r.pop("seed"),
        "unknown keys": lambda r: r.update(extra=1),
        "must be an int": lambda r: r.update(image_count="68"),
        "must be a string": lambda r: r.update(device=None),
        "not allowed": lambda r: r["rows"][0].update(psnr=float("nan")),
        "string 'key'": lambda r: r["rows"][0].pop("key"),
        "appears twice": lambda r: r["rows"].append(dict(r["rows"][0])),
        "not in 'rows'": lambda r: r["paper"].update(missing={"psnr": 1.0}),
        "not in that row": lambda r: r["paper"].update({"sigma15/virnet": {"lpips": 0.1}}),
        "not a number": lambda r: r["paper"].update({"sigma15/virnet": {"psnr": float("nan")}}),
        "list of strings": lambda r: r.update(notes="one note"),
    }
    for message, edit in faults.items():
        with pytest.raises(ValueError, match=message):
            validate_result(broken(edit))


def test_markdown_states_the_run_and_shows_paper_columns(tmp_path):
    text = write_report(_report(), tmp_path)["markdown"].read_text()
    for fact in ("CBSD68 (/data/CBSD68)", "Images: 68", "virnet-denoise-synthetic",
                 "Device: cpu", "Seed: 1000", "`python -m benchmarks.awgn --sigma 15 25`"):
        assert fact in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0] == "| key | method | psnr | psnr (paper) | ssim | lpips |"
    assert table[2] == "| sigma15/virnet | VIRNet | 34.12 | 34.27 | 0.9301 |  |"
    assert table[4] == "| clean/identity | identity | inf | — |  | n/a |"
    assert "- LPIPS: n/a (lpips weights not available)" in text


def test_comparison_grid_writes_a_png_with_images_maps_and_kernels(tmp_path):
    clean = torch.rand(3, 32, 32)
    rows = [
        [("noisy", clean + 0.1), ("ours", clean.permute(1, 2, 0).numpy()), ("truth", clean),
         ("σ map", torch.rand(1, 32, 32)), ("kernel", np.ones((21, 21)) / 441)],
        [("only one", np.zeros((32, 32, 3)))],
    ]
    path = comparison_grid(rows, tmp_path / "grid.png", crop=(4, 4, 16, 16))
    assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="crop"):
        comparison_grid(rows, tmp_path / "empty.png", crop=(40, 40, 8, 8))
    with pytest.raises(ValueError, match="panel"):
        comparison_grid([[("bad", np.zeros((4, 4, 2)))]], tmp_path / "bad.png")


def test_line_plot_writes_a_png(tmp_path):
    series = {"VIRNet": [34.3, 31.7, 28.5], "BM3D": [33.5, 30.7, 27.4]}
    path = line_plot([15, 25, 50], series, "σ (/255)", "PSNR (dB)", tmp_path / "psnr.png")
    assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="values"):
        line_plot([15, 25], series, "σ", "PSNR", tmp_path / "bad.png")
