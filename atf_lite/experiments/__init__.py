"""The book's experiments: problem generators, chapter experiments and the command line.

Modules
-------
problems                  random instances and targets (chapters 2 to 5)
recovery                  sparse recovery and low-rank matrix sensing trials (chapter 5)
recovery_report           tables and figures of chapters 4 and 5
alignment_run             kernel alignment of trained networks, Figures 1 and 3 (chapters 6 and 7)
alignment_report          its tables, figures and JSON summary
alignment_cli             ``python -m atf_lite alignment``
cnn_alignment             the alignment experiment with a convolutional network (chapter 9)
cnn_report                chapter 9's tables and figures
sample_complexity_data    the fixed splits of chapter 8's data protocol
sample_complexity_run     fixed vs adaptive vs full models against training-set size (chapter 8)
sample_complexity_report  its tables, learning curves, sample ratios and outputs
sample_complexity_study   the stored study of both data protocols: tables and figures
sample_complexity_cli     ``python -m atf_lite sample-complexity``
cli                       ``python -m atf_lite``: the sub-commands

Experiments take a frozen settings dataclass and cache their results on disk
(:mod:`atf_lite.cache`).
"""
