import json
import random

import numpy as np
import pytest
import torch

from training.checkpoint import (
    capture_rng,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    restore_rng,
    save_checkpoint,
    save_weights,
)


def _state_dict():
    return {
        "conv.weight": torch.randn(4, 3, 3, 3),
        "conv.bias": torch.randn(4),
        "counter": torch.tensor(7, dtype=torch.int64),
        "mask": torch.tensor([True, False]),
        "half": torch.randn(2, 2).to(torch.bfloat16),
    }


def test_weights_round_trip_exactly_with_metadata(tmp_path):
    weights = _state_dict()
    metadata = {"task": "denoise", "window": 7, "widths": [96, 192], "eps0_sq": 1e-6}
    path = tmp_path / "model.safetensors"
    save_weights(path, weights, metadata)
    loaded, loaded_metadata = load_weights(path)
    assert loaded.keys() == weights.keys()
    for name, tensor in weights.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor)
    assert loaded_metadata == metadata
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]


def test_weights_saved_from_views_and_shared_storage(tmp_path):
    base = torch.randn(4, 4)
    weights = {"a": base, "b": base.t(), "c": base[1:3]}
    save_weights(tmp_path / "w.safetensors", weights, {})
    loaded, _ = load_weights(tmp_path / "w.safetensors")
    for name in weights:
        assert torch.equal(loaded[name], weights[name])


def test_pickled_file_is_refused_without_unpickling(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    torch.save({"w": torch.ones(2)}, path)
    (tmp_path / "model.json").write_text("{}")

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the file was unpickled")

    monkeypatch.setattr("pickle.load", no_unpickling)
    monkeypatch.setattr("pickle.loads", no_unpickling)
    monkeypatch.setattr("torch.load", no_unpickling)
    with pytest.raises(ValueError, match="pickled"):
        load_weights(path)


def test_legacy_pickle_format_is_refused(tmp_path):
    path = tmp_path / "old.safetensors"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(ValueError, match="pickled"):
        load_weights(path)


def test_truncated_and_missing_files_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    save_weights(path, _state_dict(), {"a": 1})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(ValueError, match="corrupted or truncated"):
        load_weights(path)
    path.write_bytes(data)
    (tmp_path / "model.json").unlink()
    with pytest.raises(ValueError, match="metadata file .* is missing"):
        load_weights(path)
    with pytest.raises(ValueError, match="not found"):
        load_weights(tmp_path / "absent.safetensors")


def test_save_weights_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match=".safetensors"):
        save_weights(tmp_path / "model.pt", _state_dict(), {})
    with pytest.raises(ValueError, match="JSON"):
        save_weights(tmp_path / "model.safetensors", _state_dict(), {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def _training_run(steps, scheduler_kind, resume_from=None, save_dir=None):
    """A tiny model trained with Adam + a scheduler on random data (drawn from the global
    torch RNG, with dropout), optionally resumed from a checkpoint or saved at the end."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    if scheduler_kind == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10, eta_min=1e-4)
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 4))
    first = 0
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng(state["rng"])
        first = state["step"]
    for _ in range(steps):
        batch = torch.randn(16, 4)
        loss = (model(batch) - batch.sum(1, keepdim=True)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    if save_dir is not None:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": capture_rng(),
            "config": {"lr": 1e-2, "widths": (8, 1)},
            "metrics": {"loss": loss.item()},
        }
        return save_checkpoint(save_dir, first + steps, state)
    return model


@pytest.mark.parametrize("scheduler_kind", ["cosine", "lambda"])
def test_resumed_training_is_bit_identical_to_uninterrupted(tmp_path, scheduler_kind):
    torch.manual_seed(0)
    uninterrupted = _training_run(10, scheduler_kind)
    torch.manual_seed(0)
    path = _training_run(5, scheduler_kind, save_dir=tmp_path)
    torch.manual_seed(123)  # the restored RNG state must override this
    resumed = _training_run(5, scheduler_kind, resume_from=path)
    for a, b in zip(uninterrupted.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_state_round_trips_types(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": {"betas": (0.9, 0.99), "name": "x", "none": None, "flag": True, "ints": {3: "a"}},
        "metrics": {"psnr": 31.25, "__tensor__": 1},
    }
    loaded = load_checkpoint(save_checkpoint(tmp_path, 42, state))
    assert loaded["step"] == 42
    assert loaded["config"] == state["config"]
    assert loaded["metrics"] == state["metrics"]
    saved_opt, loaded_opt = state["optimizer"], loaded["optimizer"]
    assert list(loaded_opt["state"]) == [0, 1]
    assert loaded_opt["param_groups"] == saved_opt["param_groups"]
    assert isinstance(loaded_opt["param_groups"][0]["betas"], tuple)
    step = loaded_opt["state"][0]["step"]
    assert isinstance(step, torch.Tensor) and step.dtype == saved_opt["state"][0]["step"].dtype
    assert step.shape == () and step.item() == 1
    assert torch.equal(loaded_opt["state"][1]["exp_avg"], saved_opt["state"][1]["exp_avg"])


def test_checkpoint_files_are_safetensors_and_json(tmp_path):
    path = save_checkpoint(tmp_path, 3, {"model": {"w": torch.ones(2)}, "metrics": {"loss": 0.5}})
    assert path == tmp_path / "ckpt_00000003.safetensors"
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["step"] == 3 and record["state"]["metrics"] == {"loss": 0.5}
    assert record["state"]["model"] == {"w": {"__tensor__": "model/w"}}


def test_rng_round_trip():
    state = capture_rng()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    restore_rng(state)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_latest_checkpoint_ignores_incomplete_ones(tmp_path):
    assert latest_checkpoint(tmp_path / "absent") is None
    assert latest_checkpoint(tmp_path) is None
    save_checkpoint(tmp_path, 10, {"model": {"w": torch.ones(2)}})
    newer = save_checkpoint(tmp_path, 20, {"model": {"w": torch.zeros(2)}})
    newer.with_suffix(".json").unlink()  # crashed before the commit marker
    (tmp_path / ".ckpt_00000030.safetensors.abc.tmp").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path) == tmp_path / "ckpt_00000010.safetensors"
    with pytest.raises(ValueError, match="incomplete"):
        load_checkpoint(newer)


def test_truncated_checkpoint_is_rejected(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"model": {"w": torch.ones(100)}})
    path.write_bytes(path.read_bytes()[:-8])
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_checkpoint(path)


def test_keeps_only_the_last_checkpoints(tmp_path):
    for step in (1, 2, 3, 4, 5):
        save_checkpoint(tmp_path, step, {"model": {"w": torch.full((2,), float(step))}}, keep=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "ckpt_00000004.json",
        "ckpt_00000004.safetensors",
        "ckpt_00000005.json",
        "ckpt_00000005.safetensors",
    ]
    assert torch.equal(load_checkpoint(latest_checkpoint(tmp_path))["model"]["w"], torch.full((2,), 5.0))


def test_save_checkpoint_rejects_bad_state(tmp_path):
    with pytest.raises(ValueError, match="'model'"):
        save_checkpoint(tmp_path, 1, {"optimizer": {}})
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path, 1, {"model": {}, "step": 1})
    with pytest.raises(ValueError, match="cannot store"):
        save_checkpoint(tmp_path, 1, {"model": {}, "config": {"f": lambda: 0}})
    with pytest.raises(ValueError, match="step"):
        save_checkpoint(tmp_path, -1, {"model": {}})
    assert latest_checkpoint(tmp_path) is None
