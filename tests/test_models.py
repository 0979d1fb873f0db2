"""virnet/models.py: the embedded default models shipped in virnet/weights/."""

from virnet import models

WEIGHTS_BUDGET_BYTES = 40 * 10**6  # issue 12: the package's weights, all of them, at most 40 MB


def test_the_shipped_weights_fit_the_package_budget():
    total = sum(path.stat().st_size for path in models.EMBEDDED_DIR.iterdir() if path.is_file())
    assert 0 < total <= WEIGHTS_BUDGET_BYTES


def test_each_embedded_default_is_the_model_its_name_says():
    names = models.embedded_models()
    assert "denoise" in names
    for name in names:
        cfg = models.load_model(name).model_config
        assert models.default_model_name(cfg.task, cfg.scale) == name
