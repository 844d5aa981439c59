"""Every option of every config group composes; unknown options fail with Hydra's error naming them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from dualtune.config_checks import ConfigError, check_config
from tests.conftest import CONF_DIR, compose

GROUPS = ["model", "domain", "mode", "algo", "selection", "logger", "trainer", "experiment"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


CASES = [(c, g, o) for c in ("train", "evaluate", "score") for g in GROUPS for o in _options(g)
         if g != "experiment" or c == "train"]  # experiments are train configs


@pytest.mark.parametrize("config_name,group,option", CASES)
def test_every_option_composes(config_name, group, option):
    overrides = [f"{group}={option}"]
    if option == "hf":
        overrides.append("domain.hf.path=/tmp/some_dataset")
    cfg = compose(config_name, overrides)
    container = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    check_config(cfg, config_name)  # and every shipped option passes validation
    if group != "experiment":
        assert container[group]["name"] == option


def test_each_group_has_options_and_defaults():
    cfg = compose("train")
    assert (cfg.model.name, cfg.domain.name, cfg.mode.name, cfg.algo.name, cfg.selection.name) == (
        "tiny", "all", "dual", "sft", "full")
    for group in GROUPS:
        assert _options(group), f"conf/{group} is empty"


def test_model_configs_name_real_checkpoints():
    paths = {o: compose("train", [f"model={o}"]).model.path for o in _options("model")}
    assert paths["tiny"] is None  # built locally on first use
    assert paths["qwen2_5_vl_3b"] == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert paths["qwen3_vl_4b"] == "Qwen/Qwen3-VL-4B-Instruct"
    assert paths["internvl3_2b"].startswith("OpenGVLab/InternVL3-2B")


@pytest.mark.parametrize("bad", ["model=not_a_model", "mode=sometimes", "domain=chemistry_only"])
def test_unknown_option_fails_naming_it(bad):
    with pytest.raises(ConfigCompositionException) as err:
        compose("train", [bad])
    assert bad.split("=")[1] in str(err.value)


def test_run_dir_encodes_axes():
    cfg = compose("train", ["mode=cot", "domain=math"], return_hydra_config=True)
    run_dir = cfg.hydra.run.dir
    assert "/tiny/math/cot-sft-full/" in run_dir
    subdir = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"]
    for axis in ("model.name", "domain.name", "mode.name", "algo.name", "selection.name", "seed"):
        assert "${" + axis + "}" in subdir


def test_mode_templates_render_prompts():
    from dualtune.prompting.templates import prompt_text

    sample = {"question": "How many?", "options": [], "answer": "3", "answer_type": "number"}
    for mode_name in ("direct", "cot", "dual"):
        cfg = compose("train", [f"mode={mode_name}"])
        templates = OmegaConf.to_container(cfg.mode.templates)
        assert "<answer>" in prompt_text(sample, "cot", templates)
        assert "<think>" not in prompt_text(sample, "direct", templates)


def test_vision_tower_patterns_come_from_the_model_config():
    from dualtune.models.loading import vision_tower_patterns

    assert vision_tower_patterns(compose("train", ["model=internvl3_2b"]).model) == ("vision_tower",
                                                                                    "multi_modal_projector")
    assert vision_tower_patterns(compose("train").model) == ("visual.patch_embed", "visual.blocks", "visual.merger")
    assert vision_tower_patterns({}) == ("visual.",)


# ----------------------------------------------------------------------------- validation (issue 14)
# (config, CLI overrides, text the error must contain: the offending key, and what is expected)
BAD = [
    ("score", ["selection=rap", "selection.rollouts.num_generations=0"], "selection.rollouts.num_generations=0"),
    ("train", ["selection=pass_rate", "selection.rollouts.num_generations=-3"], "selection.rollouts.num_generations"),
    ("train", ["algo.epochs=0"], "algo.epochs=0 with algo.max_steps=-1"),
    ("train", ["algo=grpo", "algo.epochs=0", "algo.max_steps=0"], "algo.epochs=0 with algo.max_steps=0"),
    ("train", ["algo=sft_then_grpo", "algo.grpo.epochs=0", "algo.grpo.max_steps=-1"], "algo.grpo.epochs=0"),
    ("train", ["eval.modes=direct"], "eval.modes=[direct]"),
    ("evaluate", ["eval.modes=direct"], "eval.modes='direct'"),
    ("evaluate", ["eval.modes=[direct,sometimes]"], "eval.modes="),
    ("evaluate", ["eval.modes=[]"], "eval.modes=[]"),
    ("train", ["algo.lr=abc"], "algo.lr='abc': expected a number > 0"),
    ("train", ["algo.lr=0"], "algo.lr=0"),
    ("train", ["algo.batch_size=0"], "algo.batch_size=0: expected an integer >= 1"),
    ("train", ["algo.batch_size=2.5"], "algo.batch_size=2.5"),
    ("train", ["algo.max_steps=ten"], "algo.max_steps='ten'"),
    ("train", ["algo.warmup_ratio=1.5"], "algo.warmup_ratio=1.5"),
    ("train", ["algo.scheduler=linear"], "algo.scheduler='linear': expected one of ['constant', 'cosine']"),
    ("train", ["algo=grpo", "algo.num_generations=1"], "algo.num_generations=1: expected an integer >= 2"),
    ("train", ["algo=grpo", "algo.temperature=0"], "algo.temperature=0"),
    ("train", ["algo=grpo", "algo.top_p=1.5"], "algo.top_p=1.5"),
    ("train", ["algo=grpo", "algo.loss_type=ppo"], "algo.loss_type='ppo'"),
    ("train", ["algo=grpo", "algo.reward_funcs=[accuracy,speed]"], "algo.reward_funcs="),
    ("train", ["algo=grpo", "algo.reward_weights=[1.0]"], "algo.reward_weights: 1 weights for 2 reward_funcs"),
    ("train", ["algo=sft_then_grpo", "algo.grpo.mu=0"], "algo.grpo.mu=0"),
    ("train", ["eval.n_boot=0"], "eval.n_boot=0"),
    ("train", ["eval.enabled=maybe"], "eval.enabled='maybe': expected true or false"),
    ("train", ["eval.tol=-1"], "eval.tol=-1"),
    ("train", ["eval.batch_size=many"], "eval.batch_size='many'"),
    ("train", ["seed=-1"], "seed=-1"),
    ("train", ["mode.train_modes=[cot,think]"], "mode.train_modes="),
    ("train", ["mode.max_new_tokens={direct: 0, cot: 8}"], "mode.max_new_tokens="),
    ("train", ["domain.numeric_metric={spatial: mre}"], "domain.numeric_metric="),
    ("train", ["domain.n_train_per_subtask=0"], "domain.n_train_per_subtask=0"),
    ("train", ["domain.domains=[chemistry]"], "domain.domains=['chemistry']"),
    ("train", ["domain=hf"], "domain.hf.path: is required"),
    ("train", ["logger.name=tensorboard"], "logger.name='tensorboard': expected one of ['none', 'csv', 'wandb']"),
    ("train", ["selection.name=best"], "selection.name='best'"),
    ("train", ["selection=rap", "selection.variant=new"], "selection.variant='new'"),
    ("train", ["selection=rap", "selection.ace.head_agg=median"], "selection.ace.head_agg='median'"),
    ("train", ["selection=random", "selection.budget=1.5"], "selection.budget=1.5"),
    ("score", ["selection=pass_rate", "selection.preset=hard"], "selection.preset='hard'"),
    ("score", ["score.num_shards=2", "score.shard_id=2"], "score.shard_id=2: expected 0 .. score.num_shards - 1"),
    ("score", ["score.device=tpu"], "score.device='tpu'"),
    ("train", ["curation_tie_route=maybe"], "curation_tie_route='maybe': expected one of ['reasoning', 'direct', 'drop']"),
]


@pytest.mark.parametrize("config_name,overrides,expected", BAD, ids=[" ".join(o) for _, o, _ in BAD])
def test_bad_config_fails_naming_the_key(config_name, overrides, expected):
    with pytest.raises(ConfigError) as err:
        check_config(compose(config_name, overrides), config_name)
    assert expected in str(err.value)


def test_all_problems_are_reported_at_once():
    cfg = compose("train", ["algo.lr=abc", "algo.batch_size=0", "eval.modes=cot"])
    with pytest.raises(ConfigError, match=r"\(3 problems\)") as err:
        check_config(cfg, "train")
    assert all(k in str(err.value) for k in ("algo.lr", "algo.batch_size", "eval.modes"))


def test_valid_edge_values_pass():
    check_config(compose("train", ["algo.epochs=0", "algo.max_steps=5"]), "train")  # max_steps wins
    check_config(compose("train", ["eval.modes=[cot]", "curation_tie_route=drop", "algo.lr=1"]), "train")
    check_config(compose("score", ["selection=pass_rate", "selection.rollouts.num_generations=null"]), "score")
    check_config(compose("evaluate", ["algo.lr=abc"]), "evaluate")  # evaluate never reads algo.*


def test_curation_tie_route_is_declared_and_routes_ties(tmp_path):
    from dualtune.recipes.train import write_boundary

    class Result:  # the to_items() view of an evaluation result
        def __init__(self, items):
            self.items = items

        def to_items(self):
            return self.items

    assert compose("train").curation_tie_route == "direct"  # declared (with its default) in conf/train.yaml
    cfg = compose("train", ["curation_tie_route=drop", "eval.n_boot=10"])
    same = [{"domain": "d", "subtask": "s", "id": i, "S": i % 2, "L": i % 2} for i in range(4)]  # all gains 0: tie
    write_boundary(cfg, Result(same), Result(same), [{"id": "x", "domain": "d", "subtask": "s"}], tmp_path)
    manifest = json.loads((tmp_path / "curation" / "manifest.json").read_text())
    assert manifest["subtasks"][0]["region"] == "tie" and manifest["routes"]["drop"] == ["x"]


def test_a_missing_local_init_dir_is_named(tmp_path):
    """A local model dir that is not there fails at the config check, not as a hub-id error inside transformers;
    a hub id (no leading / or .) and an existing dir pass."""
    with pytest.raises(ConfigError, match=r"init_from=/no/such/run/model: no such directory"):
        check_config(compose("train", ["init_from=/no/such/run/model"]), "train")
    with pytest.raises(ConfigError, match=r"checkpoint=\./missing: no such directory"):
        check_config(compose("evaluate", ["checkpoint=./missing"]), "evaluate")
    check_config(compose("train", ["init_from=Qwen/Qwen2.5-VL-3B-Instruct"]), "train")
    check_config(compose("train", [f"init_from={tmp_path}"]), "train")
