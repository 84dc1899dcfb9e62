#!/usr/bin/env bash
# The comparison users ask for first: three GAN losses x two learning rates, DCGAN on MNIST (6 jobs),
# each evaluated four times (FID and KID), then one report ranking the jobs by FID.
#
#   scripts/sweep_loss_lr.sh                          # 2000 steps per job: minutes on a GPU, ~20 min per job on 2 CPU cores
#   STEPS=40 EVAL_N=500 scripts/sweep_loss_lr.sh      # a quick run of the whole pipeline
#   scripts/sweep_loss_lr.sh launcher=joblib          # more gan-train arguments: here, 2 jobs side by side
#
# Needs MNIST in $GAN_DATA_ROOT (or ./data). The sweep goes to $SWEEP (default multirun/loss_x_lr_<time>);
# its report to $SWEEP/report.md, report.csv and report.png; `tensorboard --logdir $SWEEP` shows the
# same comparison in its HPARAMS tab.
set -euo pipefail
STEPS=${STEPS:-2000}
EVAL_N=${EVAL_N:-5000}
SWEEP=${SWEEP:-multirun/loss_x_lr_$(date +%Y-%m-%d_%H-%M-%S)}
EVERY=$((STEPS >= 4 ? STEPS / 4 : 1))

gan-train -m experiment=dcgan_mnist loss=nonsaturating,lsgan,hinge optimizer.lr=1e-4,2e-4 \
    train.steps="$STEPS" eval.every="$EVERY" eval.n="$EVAL_N" "eval.metrics=[fid,kid]" eval.best=fid \
    samples.every="$EVERY" checkpoint.every="$EVERY" hydra.sweep.dir="$SWEEP" "$@"
gan-report "$SWEEP"
