"""Short real runs on synthetic data: outputs, checkpoint contents, and exact resume."""

import shutil

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_cli.data import DataShape
from gan_cli.errors import GanError
from gan_cli.models import build_networks
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.training.checkpoint import FORMAT_VERSION, load_checkpoint
from gan_cli.training.loop import planned_steps
from gan_cli.training.rng import seed_everything
from tests.helpers import TINY, assert_same_training_state, compose_train, resume_tiny, tiny_model, train_tiny


def test_run_writes_tensorboard_scalars_and_images(tiny_run):
    events = EventAccumulator(str(tiny_run / "tb"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss/D", "loss/G", "D(x)", "D(G(z))", "lr/generator", "lr/discriminator", "speed/images_per_second"} <= scalars
    assert [e.step for e in events.Scalars("loss/D")] == [2, 4, 6]
    assert "samples" in events.Tags()["images"]
    assert [e.step for e in events.Images("samples")] == [3, 6]


def test_run_writes_sample_grids_and_checkpoint(tiny_run):
    grids = sorted(p.name for p in (tiny_run / "samples").glob("*.png"))
    assert grids == ["step_0000003.png", "step_0000006.png"]
    # 4 images of 28x28 in a 2x2 grid with 2-pixel padding: 2 + 2 * (28 + 2) = 62
    assert Image.open(tiny_run / "samples" / "step_0000006.png").size == (62, 62)
    assert (tiny_run / "checkpoints" / "last.pt").is_file()


def test_checkpoint_is_self_contained_and_safe_to_load(tiny_run):
    path = tiny_run / "checkpoints" / "last.pt"
    raw = torch.load(path, weights_only=True)  # no pickled code inside
    assert raw["format_version"] == FORMAT_VERSION and raw["step"] == 6
    for key in ("networks", "ema", "optimizers", "scalers", "game", "rng", "global_rng", "data"):
        assert key in raw
    assert raw["networks"].keys() == {"G", "D"} and raw["ema"].keys() == {"G"}
    assert raw["optimizers"].keys() == raw["scalers"].keys() == {"generator", "discriminator"}
    assert raw["config"]["model"]["g_width"] == 8
    assert raw["fixed_inputs"]["z"].shape == (4, 100)
    assert raw["image_shape"] == {"channels": 1, "image_size": 28, "num_classes": 10}
    generator = sampler_from_checkpoint(load_checkpoint(tiny_run))
    assert generator(torch.zeros(2, 100)).shape == (2, 1, 28, 28)


def test_ema_generator_differs_from_raw_generator(tiny_run):
    checkpoint = load_checkpoint(tiny_run)
    assert checkpoint["ema_updates"] == {"G": 6}
    raw, ema = checkpoint["networks"]["G"], checkpoint["ema"]["G"]
    assert raw.keys() == ema.keys()
    assert any(not torch.equal(raw[k], ema[k]) for k in raw if raw[k].is_floating_point())


def test_weights_move(tmp_path):
    train_tiny(tmp_path / "a", ["train.steps=2", "train.ema_decay=null"])
    start = compose_train(TINY + tiny_model())
    seed_everything(start.seed)  # the run's seed: the same initial weights
    initial, _ = build_networks(start.model, DataShape((1, 28, 28), 10))
    trained = load_checkpoint(tmp_path / "a")["networks"]["G"]
    assert load_checkpoint(tmp_path / "a")["ema"] == {}
    assert not torch.equal(initial.state_dict()["net.0.weight"], trained["net.0.weight"])


def test_k_discriminator_steps_use_k_batches(tmp_path):
    train_tiny(tmp_path, ["train.d_steps=3", "train.steps=2"])
    data = load_checkpoint(tmp_path)["data"]
    # 64 images / batch 8 = 8 batches per epoch; 2 steps x 3 D updates = 6 batches
    assert (data["epoch"], data["position"]) == (0, 6 * 8)


def test_planned_steps_from_epochs():
    train = compose_train(["train.batch_size=100", "train.epochs=2"]).train
    assert planned_steps(train, 60000) == 1200
    train = compose_train(["train.batch_size=100", "train.epochs=2", "train.d_steps=5"]).train
    assert planned_steps(train, 60000) == 240
    train = compose_train(["train.steps=7"]).train
    assert planned_steps(train, 60000) == 7


@pytest.mark.parametrize(
    "model,extra",
    [
        ("dcgan", []),
        ("cgan", ["model.matching_aware=true", "train.replay_size=12", "loss.r1=1.0"]),  # replay state, wrong labels
        ("mlp", ["loss=wgan_gp", "train.d_steps=2"]),  # dropout draws from the global RNG
        ("infogan", []),
        ("mlp", ["dataset=ring_2d", "model.input_dropout=0"]),  # toy points: the game's picture at step 8 too
    ],
)
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, model, extra):
    steps = ["train.steps=8", "checkpoint.every=4", "samples.every=4", *extra]
    train_tiny(tmp_path / "straight", steps, model=model)

    train_tiny(tmp_path / "resumed", ["train.steps=4", "checkpoint.every=4", "samples.every=4", *extra], model=model)
    assert load_checkpoint(tmp_path / "resumed")["step"] == 4
    resume_tiny(tmp_path / "resumed", steps)

    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 8
    assert_same_training_state(a, b)  # networks, EMA, optimizers, the replay buffer, data order, random stream
    # the resumed run's grid at step 8 is the same picture
    grid_a = (tmp_path / "straight" / "samples" / "step_0000008.png").read_bytes()
    assert grid_a == (tmp_path / "resumed" / "samples" / "step_0000008.png").read_bytes()


def test_a_learning_rate_changed_on_resume_drives_the_next_updates(tmp_path):
    train_tiny(tmp_path / "run", ["train.steps=4", "checkpoint.every=4"])
    before = load_checkpoint(tmp_path / "run")["networks"]["D"]
    conv_weights = [name for name, value in before.items() if value.dim() == 4]
    update_norms = {}
    for lr in (1e-3, 1e-5):
        run_dir = tmp_path / f"lr_{lr}"
        shutil.copytree(tmp_path / "run", run_dir)
        resume_tiny(run_dir, [f"optimizer.lr={lr}", "train.steps=5"])
        after = load_checkpoint(run_dir)
        optimizers = after["optimizers"]
        assert optimizers["discriminator"]["param_groups"][0]["lr"] == optimizers["generator"]["param_groups"][0]["lr"] == lr
        update = torch.cat([(after["networks"]["D"][name] - before[name]).flatten() for name in conv_weights])
        update_norms[lr] = update.norm().item()
    # D's first update after the resume sees the same batch, G and Adam moments in both copies; an Adam
    # update is the learning rate times a term that does not depend on it: the rates' ratio shows.
    assert update_norms[1e-3] / update_norms[1e-5] == pytest.approx(100, rel=0.01)


def test_resume_with_fewer_steps_than_the_checkpoint_is_refused(tmp_path):
    train_tiny(tmp_path / "run", ["train.steps=4", "checkpoint.every=4"])
    before = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(GanError, match=r"the checkpoint is at step 4, past this run's last step 2 .*train.steps=8"):
        resume_tiny(tmp_path / "run", ["train.steps=2"])
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == before


def test_a_run_from_before_a_new_default_rate_resumes_at_its_own_rate(tmp_path):
    """A run started when the default optimizer.lr was 2e-4 continues at 2e-4 after the default changed,
    and at a rate the new command line names when it names one."""
    train_tiny(tmp_path / "run", ["train.steps=2"])
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    checkpoint = torch.load(path, weights_only=True)
    for key in ("lr", "generator", "discriminator"):  # what the same command line composed to then
        node = checkpoint["config"]["optimizer"]
        node[key] = 2e-4 if key == "lr" else {**node[key], "lr": 2e-4}
    torch.save(checkpoint, path)
    for new, expected in (([], 2e-4), (["optimizer.lr=1e-5"], 1e-5)):
        run_dir = tmp_path / f"resumed_{expected}"
        shutil.copytree(tmp_path / "run", run_dir)
        resume_tiny(run_dir, ["train.steps=3", *new])
        after = load_checkpoint(run_dir)
        optimizers = after["optimizers"]
        assert optimizers["generator"]["param_groups"][0]["lr"] == optimizers["discriminator"]["param_groups"][0]["lr"] == expected
        assert after["config"]["optimizer"]["generator"]["lr"] == expected


def test_fused_adam_is_the_same_algorithm_as_the_per_op_loop(tmp_path):
    """optimizer.*.fused only picks the implementation: from the same seed, the weights stay close."""
    weights = {}
    for fused in ("true", "false"):
        train_tiny(tmp_path / fused, ["train.steps=4", f"optimizer.generator.fused={fused}", f"optimizer.discriminator.fused={fused}"])
        checkpoint = load_checkpoint(tmp_path / fused)
        assert checkpoint["optimizers"]["generator"]["param_groups"][0]["fused"] is (fused == "true")
        weights[fused] = checkpoint["networks"]["G"]
    config = compose_train(TINY + tiny_model())
    seed_everything(config.seed)  # the runs' initial weights
    start = build_networks(config.model, DataShape((1, 28, 28), 10))[0].state_dict()
    for name, value in weights["true"].items():
        if value.is_floating_point() and value.dim() > 1:
            assert not torch.equal(value, start[name])  # trained
            # atol: Adam divides by sqrt(v) + eps, so on a weight whose gradients are near 0 the two
            # implementations' last-bit differences grow; 1e-4 is 2.5% of 4 steps' movement at lr 1e-3.
            torch.testing.assert_close(value, weights["false"][name], rtol=1e-4, atol=1e-4)


def test_a_run_from_before_fused_adam_resumes_with_the_configs_choice(tmp_path):
    """A checkpoint whose config and optimizer state predate optimizer.*.fused resumes (fused, as the
    config now says), and a resumed run may switch the implementation either way."""
    train_tiny(tmp_path / "run", ["train.steps=2"])
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    checkpoint = torch.load(path, weights_only=True)
    for network in ("generator", "discriminator"):
        del checkpoint["config"]["optimizer"][network]["fused"]
        checkpoint["optimizers"][network]["param_groups"][0]["fused"] = None
    torch.save(checkpoint, path)
    for new, expected in (([], True), (["optimizer.generator.fused=false", "optimizer.discriminator.fused=false"], False)):
        run_dir = tmp_path / f"resumed_{expected}"
        shutil.copytree(tmp_path / "run", run_dir)
        resume_tiny(run_dir, ["train.steps=3", *new])
        after = load_checkpoint(run_dir)
        assert after["step"] == 3
        optimizers = after["optimizers"]
        assert optimizers["generator"]["param_groups"][0]["fused"] is optimizers["discriminator"]["param_groups"][0]["fused"] is expected


def test_an_adam_node_naming_an_optimizer_without_a_fused_implementation_trains_with_a_warning(tmp_path, caplog):
    """optimizer=adam with another Adam-like class (`_target_`, as the README allows): `fused` is ignored, with a warning."""
    train_tiny(tmp_path, ["train.steps=2", "optimizer=adam", "optimizer.generator._target_=torch.optim.RAdam"])
    assert "torch.optim.RAdam has no fused implementation: optimizer.generator.fused is ignored" in caplog.text
    checkpoint = load_checkpoint(tmp_path)
    assert "fused" not in checkpoint["optimizers"]["generator"]["param_groups"][0]  # an RAdam state
    assert checkpoint["optimizers"]["discriminator"]["param_groups"][0]["fused"] is True
