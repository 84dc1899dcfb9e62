"""train.lr_decay_from: constant learning rates, then a linear decay to zero, continued exactly on resume."""

import pytest
from gan_cli.errors import GanError
from gan_cli.faults import FAULT_VARIABLE
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.schedule import linear_decay
from gan_cli.validation import check_train_config
from tests.forked import run_forked
from tests.helpers import TINY, assert_same_training, compose_train


def test_linear_decay_keeps_the_rate_then_falls_to_the_last_steps_share():
    factor = linear_decay(0.5, 10)  # steps 1-5 constant, 6-10: 5/5, 4/5, ..., 1/5
    assert [factor(t) for t in range(1, 11)] == [1.0] * 5 + [1.0, 0.8, 0.6, 0.4, 0.2]
    assert linear_decay(0.0, 4)(1) == 1.0 and linear_decay(0.0, 4)(4) == 0.25


def test_a_run_ends_at_the_decayed_rate_and_resumes_on_the_schedule(tmp_path):
    """A run stopped at step 5 of 8 (SIGINT after step 4, as Ctrl-C: acted on after the next) and resumed ends as the run that was not stopped."""
    args = [*TINY, "train.steps=8", "train.lr_decay_from=0.5", "optimizer.lr=1e-3", "log.progress_bar=false"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_forked(*args, f"hydra.run.dir={straight}", cwd=tmp_path).returncode == 0
    stopped = run_forked(*args, f"hydra.run.dir={split}", cwd=tmp_path, env={FAULT_VARIABLE: "after step 4=SIGINT"})
    assert stopped.returncode != 0 and load_checkpoint(split)["step"] == 5, stopped.stderr
    assert run_forked(f"resume={split}", cwd=tmp_path).returncode == 0
    a, b = load_checkpoint(straight), load_checkpoint(split)
    # After the last step (8 of 8, decaying from step 5) the state holds the rate of a step 9: 0.
    for name, optimizer in a["optimizers"].items():
        assert optimizer["param_groups"][0]["lr"] == pytest.approx(1e-3 * linear_decay(0.5, 8)(9)), name
    assert_same_training(a, b)


def test_the_decay_and_began_halving_are_not_combined():
    cfg = compose_train(TINY + ["model=began", "model.lr_stall_steps=10", "train.lr_decay_from=0.5"])
    with pytest.raises(GanError, match="train.lr_decay_from and model.lr_stall_steps"):
        check_train_config(cfg)


def test_a_fraction_outside_0_1_is_refused():
    with pytest.raises(GanError, match="train.lr_decay_from"):
        check_train_config(compose_train(TINY + ["train.lr_decay_from=1.0"]))
