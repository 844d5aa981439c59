"""Turn a sweep (a Hydra multirun dir) into the Dual Tuning paper's table layouts and figures.

    python -m dualtune.reproduce <multirun dir> [--paper-numbers] [--out DIR]

`collect` finds and identifies the runs (by resolved config), `tables` builds the layouts, `seeds` the
mean ± std and pooled CIs, `paper_numbers` holds the paper's printed numbers, `figures` the plots and
`report` writes everything.
"""
