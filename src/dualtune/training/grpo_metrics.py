"""Per-rollout GRPO metrics (TRL names) and completion-table rows, as pure functions of a rollout.

A rollout is the dict built by `GRPOModule._rollout`: ``results`` (one dict per completion with
``completion_ids``, ``truncated``, ``mode``, ``sample_id``, ``completion_text``), ``per_func``
(rows x reward functions, NaN = not applicable), ``total`` (weighted reward per row),
``advantages`` and ``rows`` (indices kept by the dynamic filter).
"""

from __future__ import annotations

import torch

from dualtune.training.grpo_math import reward_stats


def nan_mean_std(values: torch.Tensor) -> tuple[float, float] | None:
    """(mean, std) over the non-NaN entries, or None when there are none (std is 0 for a single value)."""
    values = values[~torch.isnan(values)]
    if values.numel() == 0:
        return None
    return values.mean().item(), (values.std().item() if values.numel() > 1 else 0.0)


def rollout_metrics(rollout: dict, reward_names: list[str], num_generations: int, dynamic_filter: bool = False,
                    dual: bool = False) -> dict[str, float]:
    """Reward, per-reward, completion-length, filter and (``dual``) per-mode metrics of one rollout
    batch (modes absent from the batch log nothing)."""
    results, total = rollout["results"], rollout["total"]
    metrics = reward_stats(total, num_generations)
    # Per reward function: a column that is NaN everywhere (not applicable) logs nothing.
    for name, column in zip(reward_names, rollout["per_func"].T):
        summary = nan_mean_std(column)
        if summary is not None:
            metrics[f"rewards/{name}/mean"], metrics[f"rewards/{name}/std"] = summary
    lengths = torch.tensor([len(r["completion_ids"]) for r in results], dtype=torch.float32)
    truncated = torch.tensor([r["truncated"] for r in results])
    metrics.update({
        "completions/mean_length": lengths.mean().item(), "completions/min_length": lengths.min().item(),
        "completions/max_length": lengths.max().item(),
        "completions/clipped_ratio": truncated.float().mean().item(),
        "completions/mean_terminated_length": lengths[~truncated].mean().item() if (~truncated).any() else 0.0})
    if dynamic_filter:
        metrics["frac_groups_filtered"] = 1.0 - len(rollout["rows"]) / len(results)
    if dual:  # a mode absent from this batch logs nothing (rather than a stale or zero value)
        for mode in ("cot", "direct"):
            picked = torch.tensor([r["mode"] == mode for r in results])
            if picked.any():
                metrics[f"modes/{mode}/reward"] = total[picked].mean().item()
                metrics[f"modes/{mode}/mean_length"] = lengths[picked].mean().item()
    return metrics


def completion_rows(rollout: dict, reward_names: list[str], step: int, max_rows: int,
                    max_chars: int = 500) -> tuple[list[str], list[list]]:
    """Column names and the first ``max_rows`` rows of a completions table (texts cut at ``max_chars``)."""
    columns = ["step", "sample_id", "mode", "completion", *reward_names, "reward", "advantage"]
    rows = []
    for i, result in enumerate(rollout["results"][:max_rows]):
        scores = [round(float(v), 3) for v in rollout["per_func"][i]]
        rows.append([step, str(result["sample_id"]), result["mode"], result["completion_text"][:max_chars],
                     *scores, round(float(rollout["total"][i]), 3), round(float(rollout["advantages"][i]), 3)])
    return columns, rows


def print_completions(columns: list[str], rows: list[list], title: str) -> None:
    """Print a completions table to the console (rich)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*[str(v) for v in row])
    Console().print(table)


def sample_rewards(rollout: dict, reward_names: list[str], num_generations: int) -> list[dict]:
    """One record per prompt of a rollout batch: its id, answer mode, the mean total reward of its
    ``num_generations`` completions (``reward``) and each reward function's mean (by name) — the per-sample
    log LIMR's learning-impact score reads (`SampleRewardLog`)."""
    results, total, per_func = rollout["results"], rollout["total"], rollout["per_func"]
    records = []
    for start in range(0, len(results), num_generations):
        group = range(start, min(start + num_generations, len(results)))
        record = {"id": results[start]["sample_id"], "mode": results[start]["mode"],
                  "reward": float(sum(float(total[i]) for i in group) / len(group))}
        for k, name in enumerate(reward_names):
            record[name] = float(sum(float(per_func[i][k]) for i in group) / len(group))
        records.append(record)
    return records
