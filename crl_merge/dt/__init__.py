"""The MuJoCo Decision Transformer track (protocols B): DT training on D4RL-style data,
batched evaluation, and the merging experiments of Lawson & Qureshi (2023)."""
