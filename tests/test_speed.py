"""The speed options are correct: bf16 autocast, channels_last, compiled steps, the EMA without host
syncs, and the benchmark harness end to end. (How fast they are is the benchmark's business.)"""

import importlib.util
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_cli import device as devices
from gan_cli.device import resolve_precision
from gan_cli.training import distributed
from gan_cli.training.ema import EMA
from gan_cli.training.loop import build_training
from tests.disk_data import write_image_folder
from tests.helpers import TINY, assert_user_error, compose_train, run_cli, tiny_model

CPU = torch.device("cpu")
SCRIPT = Path(__file__).parents[1] / "scripts" / "benchmark_training.py"


def tiny_training(overrides: list[str] = (), model: str = "dcgan", device: torch.device = CPU):
    return build_training(compose_train(TINY + tiny_model(model) + list(overrides)), device, distributed.current())


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def train(training, steps: int) -> list[dict[str, float]]:
    return [{name: value.item() for name, value in training.step().items()} for _ in range(steps)]


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a if a[k].is_floating_point())


def test_auto_precision_is_bf16_exactly_where_the_cpu_has_bf16_instructions(monkeypatch):
    assert resolve_precision("fp32", CPU) == "fp32" and resolve_precision("bf16", CPU) == "bf16"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto", CPU) == ("bf16" if native else "fp32")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")  # a torch without the probe: no bf16
    assert not devices.native_bf16(CPU)


def test_bf16_steps_have_finite_losses_move_the_weights_and_track_fp32():
    runs = {}
    for precision in ("fp32", "bf16"):
        training = tiny_training([f"train.precision={precision}"])
        before = weights(training.state.game.networks["G"])
        losses = train(training, 3)
        assert all(torch.isfinite(torch.tensor(list(step.values()))).all() for step in losses)
        assert largest_difference(before, weights(training.state.game.networks["G"])) > 1e-4
        runs[precision] = losses
    # Same seed, same data: bf16's rounding moves the losses only a little in 3 steps.
    for fp32, bf16 in zip(runs["fp32"], runs["bf16"]):
        assert bf16["loss/D"] == pytest.approx(fp32["loss/D"], rel=0.05)
        assert bf16["loss/G"] == pytest.approx(fp32["loss/G"], rel=0.05)


def test_channels_last_networks_train_like_contiguous_ones():
    nhwc = tiny_training(["train.precision=fp32", "train.channels_last=true"])
    nchw = tiny_training(["train.precision=fp32", "train.channels_last=false"])
    conv = next(p for p in nhwc.state.game.networks["D"].parameters() if p.dim() == 4 and p.shape[1] > 1)  # C > 1: the layouts differ
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    train(nhwc, 3)
    train(nchw, 3)
    # The same arithmetic in another memory order: equal up to float32 summation order.
    assert largest_difference(weights(nhwc.state.game.networks["G"]), weights(nchw.state.game.networks["G"])) < 1e-4
    assert largest_difference(weights(nhwc.state.game.networks["D"]), weights(nchw.state.game.networks["D"])) < 1e-4


def test_ema_copies_first_then_averages_with_the_ramped_decay():
    generator = torch.nn.Linear(3, 2)
    ema = EMA(generator, decay=0.999)
    assert not any(p.requires_grad for p in ema.module.parameters())
    with torch.no_grad():
        generator.weight.fill_(1.0)
    ema.update(generator)  # the first update copies
    assert torch.equal(ema.module.weight, generator.weight)
    with torch.no_grad():
        generator.weight.fill_(12.0)
    ema.update(generator)  # beta = min(0.999, (1 + 1) / (10 + 1)) = 2/11
    assert ema.module.weight[0, 0].item() == pytest.approx(2 / 11 * 1.0 + 9 / 11 * 12.0, rel=1e-6)
    assert ema.updates == 2


def dynamo_counts() -> tuple[int, int, int]:
    """(frames Dynamo tried to compile, frames it compiled, graphs it made) in this process so far."""
    from torch._dynamo.utils import counters

    return counters["frames"]["total"], counters["frames"]["ok"], counters["stats"]["unique_graphs"]


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["nonsaturating", "wgan_gp"])
def test_compiled_steps_match_eager_steps_and_compile_only_once(loss):
    import torch._dynamo

    overrides = ["train.precision=fp32", f"loss={loss}", "train.d_steps=2"]
    eager, compiled = tiny_training(overrides), tiny_training([*overrides, "train.compile=true"])
    assert compiled.state.game.networks["D"]._compiled_call_impl is not None
    before = dynamo_counts()
    eager_losses, compiled_losses = train(eager, 2), train(compiled, 2)
    after_two_steps = dynamo_counts()
    tried, compiled_frames, graphs = (b - a for a, b in zip(before, after_two_steps))
    # Compiled for real: every frame Dynamo took on became a graph (a failure that ran eagerly under
    # suppress_errors would not count as ok): G's, and D's for inputs with and without G's graph.
    assert tried == compiled_frames > 0 and graphs >= 3, (tried, compiled_frames, graphs)
    assert not torch._dynamo.config.suppress_errors  # set only while a compiled network runs
    eager_losses += train(eager, 2)
    compiled_losses += train(compiled, 2)  # alternating updates, requires_grad flips, the penalty's double backward
    assert dynamo_counts() == after_two_steps, "steps after the first two compiled new graphs"
    for a, b in zip(eager_losses, compiled_losses):
        assert a.keys() == b.keys()
        for name in a:
            assert b[name] == pytest.approx(a[name], rel=1e-3, abs=1e-4), name
    assert largest_difference(weights(eager.state.game.networks["G"]), weights(compiled.state.game.networks["G"])) < 1e-3
    # Compiled in place: the checkpoint's keys are the eager network's.
    assert weights(eager.state.game.networks["D"]).keys() == weights(compiled.state.game.networks["D"]).keys()


def test_a_graph_that_fails_to_compile_later_runs_eagerly_and_hides_no_other_error(monkeypatch):
    import torch._dynamo
    import torch._inductor.compile_fx as inductor

    training = tiny_training(["train.precision=fp32", "train.compile=true"])  # the compiler's probe passed

    def broken_compiler(*args, **kwargs):
        raise RuntimeError("the compiler broke")

    monkeypatch.setattr(inductor, "compile_fx", broken_compiler)
    monkeypatch.setattr(torch._inductor.config, "fx_graph_cache", False)  # no graph comes from the disk cache
    torch._dynamo.reset()  # nor from this process's earlier compilations
    before = dynamo_counts()
    losses = train(training, 2)  # the networks' graphs fail to compile, and run eagerly
    tried, _, graphs = (b - a for a, b in zip(before, dynamo_counts()))
    assert tried > 0 and graphs == 0, (tried, graphs)  # Dynamo took the networks on, and made no graph
    assert all(torch.isfinite(torch.tensor(list(step.values()))).all() for step in losses)
    with pytest.raises(Exception, match="the compiler broke"):  # any other compiled function still fails loudly
        torch.compile(lambda x: x * 3 + 1)(torch.ones(3))


def test_compile_where_the_compiler_cannot_run_warns_and_stays_eager(tmp_path):
    # A fresh process with no working C++ compiler (and an empty compile cache to serve nothing from).
    script = (
        "import logging, torch\n"
        "from gan_cli.training.compiled import compile_networks\n"
        "logging.basicConfig(format='%(message)s')\n"
        "network = torch.nn.Linear(2, 2)\n"
        "print(compile_networks((network,), 'default', torch.device('cpu')), network._compiled_call_impl is None)\n"
    )
    env = {**os.environ, "CXX": "/bin/false", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]  # not compiled: the network runs eagerly
    assert "train.compile=true, but torch.compile cannot run here (" in result.stderr
    assert "training eagerly" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_compile_mode_is_refused_at_compose_time(tmp_path):
    result = run_cli("gan-train", "debug=smoke", "train.compile_mode=fastest", cwd=tmp_path)
    assert_user_error(result, "train.compile_mode='fastest' must be one of default, reduce-overhead")
    assert not (tmp_path / "outputs").exists()


PAGE_FAULTS_OF_CPU_STEPS = """
import resource, torch
from gan_cli.training import distributed
from gan_cli.training.loop import build_training
from tests.helpers import compose_train
cfg = compose_train(["dataset=fake", "dataset.num_samples=256", "train.precision=fp32"])  # the default DCGAN, batch 64
training = build_training(cfg, torch.device("cpu"), distributed.current())
for _ in range(5):  # the heap grows to the step's peak
    training.step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    training.step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a setting of glibc's malloc")
def test_cpu_steps_reuse_freed_memory_instead_of_faulting_pages_in():
    # A fresh process: the malloc settings are process-wide. Without keep_freed_host_memory() a step
    # of this DCGAN makes 5,000-7,000 minor page faults (its activations are mapped and zeroed again);
    # with it, none or a few hundred while the heap settles.
    result = subprocess.run([sys.executable, "-c", PAGE_FAULTS_OF_CPU_STEPS], capture_output=True, text=True,
                            timeout=300, cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split()[-1]) < 1000, result.stdout


@pytest.mark.slow
def test_benchmark_script_runs_end_to_end(mnist_root, tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--data-root", str(mnist_root)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in (
        "machine: ", "gan-train fp32 / reference:", "gan-train bf16 / gan-train fp32:", "MFU against torch.mm:", "GFLOP per step",
        "time to quality: FID <= ", "reference: 64x64 DCGAN, batch 128", "bf16 quality: FID at n=100",
    ):
        assert line in out, out
    gflop = float(re.search(r"gan-train fp32\s+([\d.]+) GFLOP per step", out).group(1))
    assert 0.1 < gflop < 0.3  # the tiny 28x28 DCGAN's step, counted by torch.utils.flop_counter


def test_cyclegan_benchmark_runs_and_reports(mnist_root, tmp_path):
    # The harness end to end in its tiny configuration (one round of 2 steps per side, narrow networks,
    # batch 4): gan-train's CycleGAN step beside the reference-style loop. Rates are not judged here.
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--parts", "cyclegan_throughput", "--tiny", "--threads", "1",
         "--data-root", str(mnist_root)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in (
        "machine: ", "1 torch threads", "CycleGAN throughput, plain/invert 28x28, batch 4 per domain (8 images per step)",
        "reference cyclegan loop (fp32)", "gan-train fp32 / reference (fp32 vs fp32):", "/ gan-train fp32:", "(target >= 1.4)",
    ):
        assert line in out, out
    rates = re.findall(r"^  (.+?)\s+([\d.]+) \[([\d.]+) - ([\d.]+)\] img/s$", out, re.MULTILINE)
    assert len(rates) == 3 and all(float(value) > 0 for *_, value in rates), out  # three sides, each measured
    ratios = re.findall(r"/ .+?:\s+([\d.]+) \[[\d.]+ - [\d.]+\]x", out)
    assert len(ratios) == 3 and all(float(value) > 0 for value in ratios), out


def test_the_reference_image_pool_fills_then_swaps_image_by_image():
    spec = importlib.util.spec_from_file_location("benchmark_training", SCRIPT)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    pool = benchmark.ImagePool(2, seed=0)
    first = torch.arange(2.0).view(2, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool.images) == 2  # filling: stored and shown as they are
    shown = pool.query(torch.full((200, 1, 1, 1), -1.0)).flatten()
    assert len(shown) == 200 and len(pool.images) == 2
    old = shown[shown >= 0]  # each stored image comes back at most once, in place of a fresh one that takes its slot
    assert 0 < len(old) <= 2 and len(set(old.tolist())) == len(old)
    assert sum(image.item() == -1 for image in pool.images) == len(old)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@requires_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("dataset", [[], ["dataset=image_folder"]], ids=["in_memory", "streamed"])
def test_cuda_steps_make_no_host_syncs(precision, dataset, tmp_path):
    if dataset:  # an image folder over the memory budget: a DataLoader with pinned memory
        dataset = [*dataset, f"dataset.path={write_image_folder(tmp_path)}", "dataset.memory_budget_mb=0", "dataset.image_size=28"]
    training = tiny_training([f"train.precision={precision}", "train.on_nan=stop", *dataset], device=torch.device("cuda"))
    training.step()  # warm-up: cuDNN picks its algorithms
    torch.cuda.set_sync_debug_mode("error")
    try:
        scalars = [training.step() for _ in range(3)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(torch.isfinite(value).item() for step in scalars for value in step.values())


@pytest.mark.cuda
@requires_cuda
def test_fp16_with_loss_scaling_trains_on_cuda():
    training = tiny_training(["train.precision=fp16"], device=torch.device("cuda"))
    before = weights(training.state.game.networks["G"])
    losses = train(training, 3)  # GradScaler reads its overflow flag each update: fp16's one sync
    assert all(torch.isfinite(torch.tensor(list(step.values()))).all() for step in losses)
    assert training.state.updates.scalers["generator"].is_enabled()
    assert largest_difference(before, weights(training.state.game.networks["G"])) > 1e-4
