"""Every option of every config group composes; unknown options fail with Hydra's error naming them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

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
