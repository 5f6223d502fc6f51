"""The book's experiments: problem generators, chapter experiments and the command line.

Modules
-------
problems          random instances and targets (chapters 2 to 4)
recovery          sparse recovery and low-rank matrix sensing trials (chapter 4)
alignment_run     kernel alignment of trained networks, Figures 1 and 3 (chapters 5 and 6)
alignment_report  its tables, figures and JSON summary
alignment_cli     ``python -m atf_lite alignment``
cli               ``python -m atf_lite``: the sub-commands

Experiments take a frozen settings dataclass and cache their results on disk
(:mod:`atf_lite.cache`).
"""
