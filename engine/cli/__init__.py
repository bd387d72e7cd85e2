"""labdeck's headless command line (``python -m engine.cli``; ``labdeck SUBCOMMAND``)."""
