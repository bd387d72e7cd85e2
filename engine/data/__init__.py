"""labdeck's data layer: every SQL statement on labdeck's own database, one module per table
family (experiments, runs, metrics, jobs, eval results, studies/trials), returning typed rows
with columns by name. The scheduler, workers, API, CLI and TUI call it; they hold no SQL."""
