"""RAP's CDE with the real embedded default: the default tiny base model (built once per cache, as
`python score.py` builds it) scores the lab's `generic` domain, where the base can answer with the image
and the planted language-prior samples state their answer in the text (conf/domain/generic.yaml).

The cache is the user's (``DUALTUNE_CACHE``, default ~/.cache/dualtune): the first run builds the base
model (a few minutes on 2 cores), later runs reuse it. Score store and rollouts go to a temp dir.
"""

from __future__ import annotations

import numpy as np
import pytest

from dualtune.data.sources import limit_samples, load_domain
from dualtune.recipes.select import run_selection
from tests.conftest import compose

PER_SUBTASK = 24  # training samples scored per generic subtask (8 subtasks)


@pytest.fixture(scope="module")
def cde_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("cde_default")
    cfg = compose("score", ["selection=rap", "domain=generic", f"output_dir={out}", "selection.ace.enabled=false",
                            f"score.rollout_cache_dir={out}/rollouts", f"selection.scores_dir={out}/scores",
                            f"score.limit={PER_SUBTASK}", "score.plots=false"])
    rows = limit_samples(load_domain(cfg.domain, cfg.cache_dir)["train"], PER_SUBTASK)
    return run_selection(cfg, rows, out).table


def test_cde_drops_language_prior_samples_more_often_on_the_default_model(cde_table):
    table = cde_table
    prior = table["language_prior"].to_numpy(dtype=bool)
    cde_drop = (table["cde_gap"] <= 0.5).to_numpy()  # the paper's lambda_c (conf/selection/rap.yaml)
    assert prior.sum() >= 50 and (~prior).sum() >= 100
    np.testing.assert_allclose(table["cde_gap"], table["p_mm"] - table["p_txt"])
    # Without the image, the model answers the prior samples far more often than the rest ...
    assert table["p_txt"][prior].mean() >= table["p_txt"][~prior].mean() + 0.3
    # ... so CDE rejects them at a clearly higher rate.
    assert cde_drop[prior].mean() >= cde_drop[~prior].mean() + 0.25
    # Within the picture-counting subtasks (the base counts well with the image), the contrast is sharper.
    counting = table["subtask"].isin(["generic_count_color", "generic_count_all", "generic_count_shape"]).to_numpy()
    assert cde_drop[counting & prior].mean() >= 0.75
    assert cde_drop[counting & ~prior].mean() <= 0.4
