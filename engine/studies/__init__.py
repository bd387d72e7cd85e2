"""Hyperparameter studies: search spaces, tuners (the search back ends: Optuna, random, or any
installed in the ``labdeck.tuners`` entry-point group), the study worker that trains one trial
after another, and the async API the TUI and CLI use (``StudiesMixin`` on ``engine.Engine``).

Import-light: nothing here imports optuna until a study using the Optuna tuner runs.
"""
