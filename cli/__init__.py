"""The ``labdeck`` command (``python -m cli``): the composition root, the one package that
may import both ``tui`` and ``engine``, and the only place that chooses between the TUI and
headless work. Nothing imports it.

``main`` builds the top parser; each ``*_cmd(s)`` module adds its own parsers with their
handlers (``add_parsers``); ``job_control`` holds what several of them do with jobs, and
``output`` the printing. Imports run one way: main -> command modules -> job_control ->
output."""
