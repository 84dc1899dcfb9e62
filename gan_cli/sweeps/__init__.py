"""Sweeps: an Optuna sweeper that records failed trials, and the report comparing a sweep's jobs."""
