"""What a training run owns around the trainer: its output folder (``run_dir``: ownership manifest, overwrite, disk
space, failed saves), its checkpoints (``checkpoints``: complete or not, resumable or not), its log (``run_log``),
the weights a stage starts from (``start_weights``), the ``--debug`` report (``debug_report``), the process's
memory allocator settings (``allocator``) and what torchrun is told when a process fails (``launcher_report``). It
imports nothing of ``src`` but ``src.config``."""
