"""What a training run owns around the trainer: its output folder (``run_dir``: ownership manifest, overwrite, disk
space, failed saves), its checkpoints (``checkpoints``: complete or not, resumable or not), its log (``run_log``),
the weights a stage starts from (``start_weights``), the ``--debug`` report (``debug_report``) and the process's
memory allocator settings (``allocator``). It imports nothing of ``src`` but ``src.config``."""
