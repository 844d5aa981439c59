"""Training: SFT and GRPO LightningModules and their pure math helpers."""
