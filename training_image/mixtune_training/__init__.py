"""The training image: LoRA SFT (``train``), scoring (``evaluate``) and self-rehearsal data
(``generate_rehearsal``) for open causal LMs; each is a console script and a ``python -m`` module."""
