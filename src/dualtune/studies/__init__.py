"""Studies beyond the Thinking-Boundary table: each compares finished runs (run dirs) and writes tables and
figures. `thinking_patterns`: the region shift and Gain_token between CoT sources (Dual Tuning Figs. 2-3)."""
