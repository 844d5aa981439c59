"""ACE — RAP's Attention Confidence Estimator on a given attention tensor (digest rap.md §3).

Paper-level definition (§3.1, quoted by ICLR reviewer 2): with the final-layer
self-attention A over the generated reasoning tokens,

    psi_j(A) = prod_{i=j}^{L} (sigma * A_ij),     sigma = 2.0,

a column-wise product of the scaled attention every later token i >= j pays to token j.
The sample is *attention-biased* (dropped) if psi_j > lambda_a = 0.1 for some column j;
the per-sample score is psi = max_j psi_j (INFERRED, as in OPERA). Neither the paper nor
the released code (which has no ACE at all, §3.2) pins down head aggregation, windowing
or row normalisation; those are parameters here (ablation list §9 item 5).

Which rows and columns: "over the intermediate reasoning" (§3.1) — both the query rows i
and the key columns j are restricted to the generated reasoning span
``[gen_start, gen_end)`` (indices into the attention's L axis); prompt/image tokens are
neither scored columns nor contributing rows.

Why a window by default (§3.1 "practical caveat"): under the literal formula the last
column has a single factor, psi = sigma * A_jj, which exceeds 0.1 whenever a token keeps
> 5 % of attention on itself, so almost every sample would be flagged; and long columns
are products of hundreds of factors, so psi_j is not comparable across positions. The
defaults ``window = min_rows = 8`` make every scored psi_j a product of exactly 8
factors (rows j..j+7) and ignore the last 7 columns. Since sigma * A_ij >= 1 only when
token j receives >= 1/sigma of row i's attention, psi_j > 0.1 then means the geometric
mean of sigma * A over 8 consecutive rows exceeds 0.1 ** (1/8) ~= 0.75, i.e. those rows
put on average ~>= 37.5 % of their attention on the single earlier reasoning token j:
sustained over-attention to one token, the paper's "attention-biased" notion.
``window=None, min_rows=1`` gives the literal formula.

Everything is computed in log space: log psi_j = n_j * log(sigma) + sum_i log(A_ij), where
A_ij = 0 contributes -inf (psi_j = 0) instead of underflowing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

HEAD_AGGREGATIONS = ("mean", "max")
FLAG_AGGREGATIONS = ("any", "majority", "first")


@dataclass(frozen=True)
class AceResult:
    """Per-sample ACE outcome.

    Attributes:
        log_psi: max over scored columns of log psi_j (``-inf`` if no column is scored or
            every scored column has a zero attention factor).
        psi: ``exp(log_psi)`` (may be 0.0, or ``inf`` for very long unwindowed products).
        argmax_col: position (index into the attention's L axis) of the maximising column,
            first one on ties; ``None`` if no column qualifies.
        n_factors: number of factors in the maximising column's product (0 if none).
        n_columns: number of columns that were scored (had >= ``min_rows`` factors).
        flag: ``psi > lam_a`` (strict, compared in log space) — attention-biased.
    """

    log_psi: float
    psi: float
    argmax_col: int | None
    n_factors: int
    n_columns: int
    flag: bool

    def to_dict(self) -> dict:
        """Plain-dict view for JSON logging of per-sample selection records."""
        return asdict(self)


def aggregate_heads(attn: torch.Tensor, head_agg: str = "mean") -> torch.Tensor:
    """Collapse ``[H, L, L]`` attention to ``[L, L]`` by mean or max over heads."""
    if head_agg not in HEAD_AGGREGATIONS:
        raise ValueError(f"head_agg must be one of {HEAD_AGGREGATIONS}, got {head_agg!r}")
    return attn.mean(dim=0) if head_agg == "mean" else attn.amax(dim=0)


def ace_column_log_psi(
    attn,
    gen_start: int,
    gen_end: int,
    sigma: float = 2.0,
    head_agg: str = "mean",
    window: int | None = 8,
    renormalize: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log column scores over the generated span.

    Args:
        attn: attention ``[H, L, L]`` (query x key, causal) or ``[L, L]`` (one head);
            torch tensor or numpy array, any float dtype.
        gen_start, gen_end: generated reasoning tokens are ``[gen_start, gen_end)``.
        sigma: attention scale (paper: 2.0).
        head_agg: "mean" or "max" over heads (paper: unknown; OPERA uses max).
        window: product over rows ``i in [j, min(j + window, gen_end))``; ``None`` = all
            generated rows ``i >= j`` (literal formula).
        renormalize: after head aggregation, rescale each query row (all keys <= the
            row) to sum to 1, as OPERA does after its max over heads (§3.1 lineage);
            a no-op for ``head_agg="mean"`` on proper softmax rows.

    Returns:
        ``(log_psi [G], n_factors [G])`` for the G = gen_end - gen_start generated
        columns, float64 and int64, on CPU; entry k is column ``gen_start + k``.
    """
    a = torch.as_tensor(attn)
    if a.ndim == 2:
        a = a.unsqueeze(0)
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(f"attn must be [H, L, L] or [L, L], got {tuple(a.shape)}")
    seq_len = a.shape[1]
    if not 0 <= gen_start < gen_end <= seq_len:
        raise ValueError(f"need 0 <= gen_start < gen_end <= L={seq_len}, got [{gen_start}, {gen_end})")
    if window is not None and window < 1:
        raise ValueError(f"window must be >= 1 or None, got {window}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")

    # Generated query rows against every key they can see (causal: keys < gen_end).
    rows = aggregate_heads(a[:, gen_start:gen_end, :gen_end], head_agg).to("cpu", torch.float64)
    if not torch.isfinite(rows).all() or (rows < 0).any():
        raise ValueError("attention weights must be finite and non-negative")
    if renormalize:
        totals = rows.sum(dim=1, keepdim=True)
        rows = torch.where(totals > 0, rows / totals.clamp_min(1e-300), rows)
    span = rows[:, gen_start:gen_end]  # [G rows i, G cols j], both relative to gen_start

    # Factor mask: row i contributes to column j iff j <= i < j + window.
    g = span.shape[0]
    i_idx = torch.arange(g).unsqueeze(1)
    j_idx = torch.arange(g).unsqueeze(0)
    in_product = i_idx >= j_idx
    if window is not None:
        in_product &= i_idx < j_idx + window

    # log(0) = -inf is exactly what a zero factor should contribute; masked-out entries add 0.
    log_terms = torch.where(in_product, torch.log(span) + math.log(sigma), torch.zeros_like(span))
    return log_terms.sum(dim=0), in_product.sum(dim=0).to(torch.int64)


def ace_from_log_psi(
    log_psi,
    n_factors,
    lam_a: float = 0.1,
    min_rows: int = 8,
    col_offset: int = 0,
) -> AceResult:
    """Reduce per-column log scores to the sample score and flag.

    Only columns with ``n_factors >= min_rows`` are scored; psi = max over them, the flag
    is ``log_psi > log(lam_a)``. ``col_offset`` is added to the reported argmax column
    (pass ``gen_start`` to get an index into the attention's L axis).
    """
    if lam_a <= 0:
        raise ValueError(f"lam_a must be > 0, got {lam_a}")
    if min_rows < 1:
        raise ValueError(f"min_rows must be >= 1, got {min_rows}")
    scores = torch.as_tensor(log_psi, dtype=torch.float64).reshape(-1)
    counts = torch.as_tensor(n_factors).reshape(-1)
    if scores.shape != counts.shape:
        raise ValueError("log_psi and n_factors must have the same length")
    eligible = torch.nonzero(counts >= min_rows).reshape(-1)
    if eligible.numel() == 0:
        return AceResult(-math.inf, 0.0, None, 0, 0, False)
    # torch.argmax returns the first maximum, so ties go to the earliest column.
    best = int(eligible[torch.argmax(scores[eligible])])
    best_log = float(scores[best])
    return AceResult(
        log_psi=best_log,
        psi=math.exp(best_log) if best_log < 709.0 else math.inf,  # exp overflows past ~709.78
        argmax_col=best + col_offset,
        n_factors=int(counts[best]),
        n_columns=int(eligible.numel()),
        flag=bool(best_log > math.log(lam_a)),
    )


def ace_score(
    attn,
    gen_start: int,
    gen_end: int,
    sigma: float = 2.0,
    lam_a: float = 0.1,
    head_agg: str = "mean",
    min_rows: int = 8,
    window: int | None = 8,
    renormalize: bool = False,
) -> AceResult:
    """ACE score of one sample: psi = max_j prod_{i in rows(j)} sigma * A_ij, flag psi > lam_a.

    See the module docstring for the row/column restriction and the window/min_rows
    defaults; arguments are those of :func:`ace_column_log_psi` and
    :func:`ace_from_log_psi`. ``window=None, min_rows=1`` is the literal paper formula.
    """
    log_psi, n_factors = ace_column_log_psi(
        attn, gen_start, gen_end, sigma=sigma, head_agg=head_agg, window=window, renormalize=renormalize
    )
    return ace_from_log_psi(log_psi, n_factors, lam_a=lam_a, min_rows=min_rows, col_offset=gen_start)


def aggregate_flags(flags_per_rollout, rule: str = "any") -> np.ndarray:
    """Combine ACE flags of several scored rollouts per sample (paper: unknown, §3.1).

    Args:
        flags_per_rollout: bool array ``[N, R]`` (R >= 1 scored rollouts per sample).
        rule: "any" (flag if any rollout is flagged), "majority" (strictly more than half)
            or "first" (the first rollout only).
    """
    flags = np.asarray(flags_per_rollout, dtype=bool)
    if flags.ndim != 2 or flags.shape[1] == 0:
        raise ValueError(f"flags_per_rollout must be [N, R] with R >= 1, got {flags.shape}")
    if rule == "any":
        return flags.any(axis=1)
    if rule == "majority":
        return flags.sum(axis=1) * 2 > flags.shape[1]
    if rule == "first":
        return flags[:, 0].copy()
    raise ValueError(f"rule must be one of {FLAG_AGGREGATIONS}, got {rule!r}")
