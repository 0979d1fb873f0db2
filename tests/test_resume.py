"""The rules for continuing a run: the checkpoint to resume and the cut of metrics.csv."""

import pytest
import torch

from training.checkpoint import save_checkpoint
from training.config import load_config
from training.resume import cut_log_after, resume_point

HEADER = b"step,loss,lr\r\n"


def test_the_log_keeps_its_rows_up_to_the_step_byte_for_byte_and_loses_the_rest(tmp_path):
    log = tmp_path / "metrics.csv"
    kept = HEADER + b"1,0.5,1e-3\r\n2,0.25,1e-3\r\n"
    log.write_bytes(kept + b"3,0.125,1e-3\r\n4,0.1")  # steps after the checkpoint, the last one torn
    assert cut_log_after(log, 2) == ("step", "loss", "lr")
    assert log.read_bytes() == kept


def test_a_torn_row_before_the_step_ends_the_kept_part(tmp_path):
    log = tmp_path / "metrics.csv"
    log.write_bytes(HEADER + b"1,0.5,1e-3\r\n2")
    cut_log_after(log, 5)
    assert log.read_bytes() == HEADER + b"1,0.5,1e-3\r\n"


def test_a_file_without_a_step_column_is_refused(tmp_path):
    (tmp_path / "metrics.csv").write_bytes(b"loss\r\n0.5\r\n")
    with pytest.raises(ValueError, match="not a metrics log"):
        cut_log_after(tmp_path / "metrics.csv", 1)


def test_resume_point_refuses_another_architecture_and_a_step_beyond_the_end(tmp_path):
    config = load_config("denoise-niid-cpu", ["guide.rnet_widths=[8,16]", "optim.steps=10"])
    save_checkpoint(tmp_path, 4, {"model": {"w": torch.ones(1)}, "config": config.to_dict()})
    assert resume_point(tmp_path, config).state["step"] == 4
    other = load_config("denoise-niid-cpu", ["guide.rnet_widths=[8,32]", "optim.steps=10"])
    with pytest.raises(ValueError, match=r"guide.rnet_widths \(8, 16\) -> \(8, 32\)"):
        resume_point(tmp_path, other)
    with pytest.raises(ValueError, match="at step 4, beyond optim.steps = 3"):
        resume_point(tmp_path, load_config("denoise-niid-cpu", ["guide.rnet_widths=[8,16]", "optim.steps=3"]))


def test_the_newest_readable_checkpoint_wins_and_the_skipped_ones_are_named(tmp_path):
    config = load_config("denoise-niid-cpu", ["optim.steps=10"])
    for step in (2, 4):
        save_checkpoint(tmp_path, step, {"model": {"w": torch.full((3,), float(step))}, "config": config.to_dict()})
    (tmp_path / "ckpt_00000006.safetensors").write_bytes(b"orphan without its JSON")
    newest = tmp_path / "ckpt_00000004.safetensors"
    newest.write_bytes(newest.read_bytes()[:-4])
    point = resume_point(tmp_path, config)
    assert point.state["step"] == 2 and torch.equal(point.state["model"]["w"], torch.full((3,), 2.0))
    assert [entry.split(" ")[0] for entry in point.skipped] == ["ckpt_00000006", "ckpt_00000004"]
