"""Released checkpoints of the public implementation import into our guide, numerically equal.

The public key names and shapes of each configuration are listed here from the public
architecture's description (networks/DnCNN.py, KNet.py, AttResUNet.py, VIRNet.py of
zsyOAOA/VIRNet), and its forward pass is written here with torch.nn.functional on that
state dict, independently of guides/: a checkpoint in the released layout with random
weights must give our guide the same µ, β and (λ1², λ2², ρ) to float precision.
"""

import math
import pickle

import pytest
import torch
import torch.nn.functional as F

from cli import main
from virnet.errors import VirnetError
from virnet.models import import_official, load_model
from virnet.official import our_key

# The public configurations (configs/denoising_syn.json, denoising_real.json, sisr_x*.json).
CONFIGS = {
    "denoise": dict(sigma=1, snet_depth=5, widths=(96, 192, 288), blocks=3, mode="input"),
    "denoise-real": dict(sigma=3, snet_depth=8, widths=(96, 160, 224, 288), blocks=3, mode="input"),
    "sr": dict(sigma=1, snet_depth=5, widths=(96, 160, 224), blocks=2, mode="both", knet_blocks=8),
}
SNET_FEATURES, KNET_FEATURES, KNET_REDUCTION = 64, 64, 16
KERNEL_CHANNELS = 3  # (λ1², λ2², ρ)
TOLERANCE = 1e-4  # max abs difference on [0, 1] images (the bar)


# ---- the public state dicts: names and shapes --------------------------------------------


def public_shapes(task: str) -> dict[str, tuple[int, ...]]:
    """Every parameter of the public network of `task`, by its public name."""
    cfg = CONFIGS[task]
    shapes = {}

    def conv(name, out_ch, in_ch, k, bias=True):
        shapes[f"{name}.weight"] = (out_ch, in_ch, k, k)
        if bias:
            shapes[f"{name}.bias"] = (out_ch,)

    conv("SNet.conv1", SNET_FEATURES, 3, 3)
    for i in range(cfg["snet_depth"] - 2):
        conv(f"SNet.mid_layer.{2 * i}", SNET_FEATURES, SNET_FEATURES, 3)
    conv("SNet.conv_last", cfg["sigma"], SNET_FEATURES, 3)

    extra = cfg["sigma"]
    if task == "sr":
        extra += KERNEL_CHANNELS
        conv("KNet.head", KNET_FEATURES, 3, 9, bias=False)
        for b in range(cfg["knet_blocks"]):
            conv(f"KNet.body.{b}.body.0", KNET_FEATURES, KNET_FEATURES, 3)
            conv(f"KNet.body.{b}.body.2", KNET_FEATURES, KNET_FEATURES, 3)
            conv(f"KNet.body.{b}.body.3.body.0", KNET_FEATURES // KNET_REDUCTION, KNET_FEATURES, 1)
            conv(f"KNet.body.{b}.body.3.body.2", KNET_FEATURES, KNET_FEATURES // KNET_REDUCTION, 1)
        conv("KNet.tail.0", KERNEL_CHANNELS, KNET_FEATURES, 3)

    widths, depth = cfg["widths"], len(cfg["widths"])
    conv("RNet.head", widths[0], 3 + (extra if cfg["mode"] in ("input", "both") else 0), 3)
    for i, nf in enumerate(widths):
        for k in range(cfg["blocks"]):
            block = f"RNet.down_path.{i}.body.{k}"
            if cfg["mode"] in ("down", "both"):
                for sft in ("sft1", "sft2"):
                    conv(f"{block}.{sft}.conv1", nf // 8, extra, 1)
                    conv(f"{block}.{sft}.conv2", nf // 4, nf // 8, 1)
                    conv(f"{block}.{sft}.mul_conv", nf, nf // 4, 1)
                    conv(f"{block}.{sft}.add_conv", nf, nf // 4, 1)
            conv(f"{block}.conv1", nf, nf, 3)
            conv(f"{block}.conv2", nf, nf, 3)
        if i + 1 < depth:
            conv(f"RNet.down_path.{i}.downsampler", widths[i + 1], nf, 3)
    for j, jj in enumerate(reversed(range(depth - 1))):
        shapes[f"RNet.up_path.{j}.upsampler.weight"] = (widths[jj + 1], widths[jj], 2, 2)
        shapes[f"RNet.up_path.{j}.upsampler.bias"] = (widths[jj],)
        for k in range(cfg["blocks"]):
            conv(f"RNet.up_path.{j}.body.{k}.conv1", widths[jj], widths[jj], 3)
            conv(f"RNet.up_path.{j}.body.{k}.conv2", widths[jj], widths[jj], 3)
    conv("RNet.tail", 3, widths[0], 3)
    return shapes


def random_state(task: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of a sensible scale (±1/√fan-in, biases ±0.1), so activations stay O(1)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in public_shapes(task).items():
        if name.endswith(".bias"):
            state[name] = 0.1 * (2 * torch.rand(shape, generator=gen) - 1)
        else:
            fan_in = shape[0] * shape[2] * shape[3] if "upsampler" in name else math.prod(shape[1:])
            state[name] = (2 * torch.rand(shape, generator=gen) - 1) / math.sqrt(fan_in)
    return state


def save_released(path, state, ddp=True, wrapped=True):
    """torch.save in the released layout: {"model_state_dict": {"module." + key: ...}, ...}."""
    weights = {("module." if ddp else "") + k: v for k, v in state.items()}
    torch.save({"epoch": 120, "step": 1000, "model_state_dict": weights} if wrapped else weights, path)
    return path


# ---- the public forward pass, functional ---------------------------------------------------


def conv(x, sd, name, stride=1, padding=None):
    weight = sd[f"{name}.weight"]
    padding = weight.shape[-1] // 2 if padding is None else padding
    return F.conv2d(x, weight, sd.get(f"{name}.bias"), stride=stride, padding=padding)


def reference_snet(sd, y, depth, average):
    """DnCNN: conv, LeakyReLU(0.25), (depth − 2) × [conv, LeakyReLU(0.25)], conv; then the
    optional global average (before the clamp), clamp to [log 1e-10, log 1e2], exp."""
    h = F.leaky_relu(conv(y, sd, "SNet.conv1"), 0.25)
    for i in range(depth - 2):
        h = F.leaky_relu(conv(h, sd, f"SNet.mid_layer.{2 * i}"), 0.25)
    out = conv(h, sd, "SNet.conv_last")
    if average:
        out = out.mean(dim=(-2, -1), keepdim=True)
    return out.clamp(math.log(1e-10), math.log(1e2)).exp()


def reference_knet(sd, y, blocks):
    """head (9×9, stride 4, no bias), residual channel-attention blocks, conv to 3, mean."""
    h = conv(y, sd, "KNet.head", stride=4, padding=4)
    for b in range(blocks):
        p = f"KNet.body.{b}.body"
        r = conv(F.leaky_relu(conv(h, sd, f"{p}.0"), 0.2), sd, f"{p}.2")
        pooled = r.mean(dim=(-2, -1), keepdim=True)
        gate = torch.sigmoid(conv(F.leaky_relu(conv(pooled, sd, f"{p}.3.body.0"), 0.2), sd, f"{p}.3.body.2"))
        h = h + r * gate
    out = conv(h, sd, "KNet.tail.0").mean(dim=(-2, -1))  # N×3
    return torch.cat([out[:, :2].clamp(math.log(1e-4), math.log(1e2)).exp(), out[:, 2:].tanh()], dim=1)


def reference_block(sd, name, x, extra):
    def modulation(sft):
        f = F.leaky_relu(conv(extra, sd, f"{name}.{sft}.conv1"), 0.2)
        f = F.leaky_relu(conv(f, sd, f"{name}.{sft}.conv2"), 0.2)
        return torch.sigmoid(conv(f, sd, f"{name}.{sft}.mul_conv")), conv(f, sd, f"{name}.{sft}.add_conv")

    h = x
    if extra is not None:
        mul, add = modulation("sft1")
        h = h * mul + add
    h = conv(F.leaky_relu(h, 0.2), sd, f"{name}.conv1")
    if extra is not None:
        mul, add = modulation("sft2")
        h = h * mul + add
    return x + conv(F.leaky_relu(h, 0.2), sd, f"{name}.conv2")


def reference_rnet(sd, x, extra, widths, blocks, mode):
    """AttResUNet: reflect pad to 2^(depth−1), head, down path (extra maps resized by nearest
    neighbour in "down"/"both"), up path with additive skips, tail, crop, + x."""
    depth, (h, w) = len(widths), x.shape[-2:]
    mod = 2 ** (depth - 1)
    pad = (0, -w % mod, 0, -h % mod)
    xp, ep = F.pad(x, pad, mode="reflect"), F.pad(extra, pad, mode="reflect")
    f = conv(torch.cat([xp, ep], 1) if mode in ("input", "both") else xp, sd, "RNet.head")
    skips = []
    for i in range(depth):
        level_extra = F.interpolate(ep, size=f.shape[-2:], mode="nearest") if mode in ("down", "both") else None
        for k in range(blocks):
            f = reference_block(sd, f"RNet.down_path.{i}.body.{k}", f, level_extra)
        if i + 1 < depth:
            skips.append(f)
            f = conv(f, sd, f"RNet.down_path.{i}.downsampler", stride=2, padding=1)
    for j in range(depth - 1):
        up = sd[f"RNet.up_path.{j}.upsampler.weight"], sd[f"RNet.up_path.{j}.upsampler.bias"]
        f = F.conv_transpose2d(f, *up, stride=2) + skips[-j - 1]
        for k in range(blocks):
            f = reference_block(sd, f"RNet.up_path.{j}.body.{k}", f, None)
    return conv(f, sd, "RNet.tail")[..., :h, :w] + x


def reference_forward(sd, task, y, scale=1):
    """The public VIRAttResUNet / VIRAttResUNetSR forward: (µ, σ² map, kernel info or None)."""
    cfg = CONFIGS[task]
    if task != "sr":
        sigma = reference_snet(sd, y, cfg["snet_depth"], average=False)
        return reference_rnet(sd, y, sigma.sqrt(), cfg["widths"], cfg["blocks"], cfg["mode"]), sigma, None
    sigma = reference_snet(sd, y, cfg["snet_depth"], average=True)  # N×1×1×1
    kinfo = reference_knet(sd, y, cfg["knet_blocks"])  # N×3
    y_up = F.interpolate(y, scale_factor=scale, mode="nearest")
    size = y_up.shape[-2:]
    extra = torch.cat([kinfo[:, :, None, None].expand(-1, -1, *size), sigma.sqrt().expand(-1, -1, *size)], 1)
    mu = reference_rnet(sd, y_up, extra, cfg["widths"], cfg["blocks"], cfg["mode"])
    return mu, sigma, kinfo


# ---- tests -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sr_checkpoint(tmp_path_factory):
    return save_released(tmp_path_factory.mktemp("released") / "virnet_sisr_x4.pth", random_state("sr"))


@pytest.mark.parametrize(
    "task, scale, size",
    [("denoise", None, (29, 35)), ("denoise-real", None, (27, 33)), ("sr", 2, (11, 13)), ("sr", 3, (10, 15))],
)
def test_imported_guide_computes_the_public_forward_pass(tmp_path, task, scale, size):
    state = random_state(task, seed=1)
    checkpoint = save_released(tmp_path / "released.pth", state)
    model = import_official(checkpoint, tmp_path / "imported.safetensors", task, scale)
    guide = load_model(model)
    y = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        post = guide.posterior(y)
        mu, sigma, kinfo = reference_forward({k: v.double() for k, v in state.items()}, task, y.double(), scale or 1)
    assert post.mu.shape == mu.shape
    assert (post.mu.double() - mu).abs().max() <= TOLERANCE
    assert (mu - torch.nn.functional.interpolate(y.double(), scale_factor=scale or 1)).abs().max() > 0.1  # not trivial
    beta = post.beta.double()
    assert beta.shape == (2, CONFIGS[task]["sigma"], *size)
    assert torch.allclose(beta, sigma.expand_as(beta), rtol=TOLERANCE, atol=0)
    if task == "sr":
        ours = torch.cat([post.eta, post.m[:, None]], dim=1).double()
        assert torch.allclose(ours, kinfo, rtol=TOLERANCE, atol=TOLERANCE)


def test_the_public_sr_network_has_the_parameter_count_we_state():
    assert round(sum(math.prod(s) for s in public_shapes("sr").values()) / 1e6, 2) == 5.90


@pytest.mark.parametrize("ddp, wrapped", [(False, True), (True, False), (False, False)])
def test_bare_state_dicts_and_unprefixed_keys_import_too(tmp_path, ddp, wrapped):
    state = random_state("sr", seed=3)
    checkpoint = save_released(tmp_path / "x.pth", state, ddp=ddp, wrapped=wrapped)
    guide = load_model(import_official(checkpoint, tmp_path / "x.safetensors", "sr", 4))
    assert torch.equal(guide.state_dict()["rnet.head.weight"], state["RNet.head.weight"])


def test_public_keys_map_to_ours_by_the_network_name_only():
    assert our_key("module.SNet.conv1.weight") == "snet.conv1.weight"
    assert our_key("KNet.body.3.body.3.body.0.bias") == "knet.body.3.body.3.body.0.bias"
    assert our_key("RNet.down_path.0.body.1.sft2.mul_conv.weight") == "rnet.down_path.0.body.1.sft2.mul_conv.weight"
    assert our_key("pca_matrix") is None


def test_metadata_records_the_source_and_the_public_hyper_parameters(tmp_path, sr_checkpoint):
    import json

    out = import_official(sr_checkpoint, tmp_path / "sr.safetensors", "sr", 4)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["source"]["file"] == "virnet_sisr_x4.pth" and len(meta["source"]["sha256"]) == 64
    assert meta["model_config"]["scale"] == 4 and meta["model_config"]["window"] == 9
    assert meta["model_config"]["downsampler"] == "bicubic"
    assert meta["guide_config"]["conditioning"] == "both"


def _edited(state, drop=(), add=None, reshape=None):
    state = {k: v for k, v in state.items() if k not in drop}
    state.update(add or {})
    for key, shape in (reshape or {}).items():
        state[key] = torch.zeros(shape)
    return state


@pytest.mark.parametrize(
    "task, scale, edit, message",
    [
        ("denoise", None, {}, "has KNet weights: it is a super-resolution checkpoint"),
        ("sr", 4, {"drop": [k for k in public_shapes("sr") if k.startswith("KNet.")]}, "has no KNet weights"),
        ("sr", 4, {"drop": ["RNet.tail.bias", "KNet.head.weight"]}, "lacks 2 weight.*KNet.head.weight, RNet.tail.bias"),
        ("sr", 4, {"add": {"RNet.extra.weight": torch.zeros(1), "pca_matrix": torch.zeros(1)}},
         "2 unexpected key.*RNet.extra.weight, pca_matrix"),
        ("sr", 4, {"reshape": {"RNet.head.weight": (96, 4, 3, 3)}},
         r"RNet.head.weight is \(96, 4, 3, 3\), expected \(96, 7, 3, 3\)"),
        ("sr", None, {}, "needs --scale"),
    ],
)
def test_refusals_name_what_is_wrong(tmp_path, sr_checkpoint, task, scale, edit, message):
    checkpoint = sr_checkpoint
    if edit:
        checkpoint = save_released(tmp_path / "edited.pth", _edited(random_state("sr"), **edit))
    output = tmp_path / "out.safetensors"
    with pytest.raises(VirnetError, match=message):
        import_official(checkpoint, output, task, scale)
    assert list(tmp_path.iterdir()) == ([checkpoint] if edit else [])


@pytest.mark.parametrize(
    "channels, task, message",
    [(3, "denoise", "real-noise denoiser; pass --task denoise-real"),
     (1, "denoise-real", "synthetic-noise denoiser; pass --task denoise")],
)
def test_a_denoiser_of_the_other_noise_kind_is_refused(tmp_path, channels, task, message):
    checkpoint = tmp_path / "denoiser.pth"
    torch.save({"model_state_dict": {"SNet.conv_last.weight": torch.zeros(channels, 64, 3, 3)}}, checkpoint)
    with pytest.raises(VirnetError, match=message):
        import_official(checkpoint, tmp_path / "o.safetensors", task)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a checkpoint at all", "weights_only=True refused it"),
        (pickle.dumps(_Payload()), "weights_only=True refused it"),
        (None, "not a VIRNet checkpoint"),
    ],
)
def test_files_that_are_not_plain_checkpoints_are_refused_without_running_code(tmp_path, capsys, content, message):
    path = tmp_path / "bad.pth"
    if content is None:
        torch.save({"model_state_dict": {"SNet.conv1.weight": [1, 2]}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(VirnetError, match=message):
        import_official(path, tmp_path / "o.safetensors", "denoise")
    assert "must never run" not in capsys.readouterr().out


def test_cli_imports_and_the_result_restores_and_samples(tmp_path, sr_checkpoint, capsys):
    out = tmp_path / "sr-x4.safetensors"
    assert main(["import-official", str(sr_checkpoint), "--task", "sr", "--scale", "4", "-o", str(out)]) == 0
    assert "5.90M parameters" in capsys.readouterr().out
    from virnet.image_io import write_image

    source = tmp_path / "small.png"
    write_image(source, torch.rand(3, 12, 10, generator=torch.Generator().manual_seed(5)))
    restored = tmp_path / "big.png"
    assert main(["restore", str(source), "-o", str(restored), "--model", str(out), "--device", "cpu"]) == 0
    assert restored.is_file()
    draws = tmp_path / "draws"
    assert main(["sample", str(source), "-n", "2", "-o", str(draws), "--model", str(out), "--device", "cpu"]) == 0
    assert (draws / "small_z001.png").is_file()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--task", "denoise"], "super-resolution checkpoint"),
        (["--task", "sr"], "needs --scale"),
        (["--task", "denoise", "--scale", "2"], "--scale is for --task sr"),
        (["--task", "sr", "--scale", "4", "-o", "{tmp}/model.pth"], "must be a .safetensors file"),
        (["--task", "sr", "--scale", "4", "-o", "{tmp}/missing/model.safetensors"], "does not exist"),
    ],
)
def test_cli_errors_are_one_line_with_status_2_and_no_output(tmp_path, sr_checkpoint, capsys, arguments, message):
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    if "-o" not in arguments:
        arguments += ["-o", str(tmp_path / "model.safetensors")]
    assert main(["import-official", str(sr_checkpoint), *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("virnet: error: ") and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_cli_keeps_an_existing_model_unless_overwrite(tmp_path, sr_checkpoint, capsys):
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"mine")
    command = ["import-official", str(sr_checkpoint), "--task", "sr", "--scale", "2", "-o", str(out)]
    assert main(command) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert main([*command, "--overwrite"]) == 0
    assert load_model(out).model_config.scale == 2


@pytest.mark.gpu
def test_an_imported_model_gives_the_same_restoration_on_cuda(tmp_path, sr_checkpoint, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 convolutions, not TF32
    model = import_official(sr_checkpoint, tmp_path / "sr.safetensors", "sr", 3)
    y = torch.rand(1, 3, 11, 13, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        on_cpu = load_model(model).posterior(y).mu
        on_cuda = load_model(model, device="cuda").posterior(y.cuda()).mu
    assert on_cuda.device.type == "cuda"
    assert (on_cuda.cpu() - on_cpu).abs().max() <= TOLERANCE
