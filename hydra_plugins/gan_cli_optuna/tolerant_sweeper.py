"""hydra-optuna-sweeper's Optuna sweeper, recording failed trials as failed (gan_cli.sweeps.optuna).

Hydra builds sweepers only from classes of the hydra_plugins package, and imports every module of it
at start-up: this one stays light (optuna itself is imported when the sweeper is built) and offers
nothing when the optuna extra is not installed.
"""

try:
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the optuna extra is not installed
    TolerantOptunaSweeper = None
else:

    class TolerantOptunaSweeper(OptunaSweeper):
        def __init__(self, **options) -> None:  # the plugin's: sampler, direction, n_trials, params, ...
            from gan_cli.sweeps.optuna import TolerantOptunaSweeperImpl

            self.sweeper = TolerantOptunaSweeperImpl(**options)
