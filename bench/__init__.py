"""Benchmarks (docs/benchmarks.md): each script runs as ``.venv/bin/python bench/<name>.py [--quick]``.

train_throughput  training images/s, ours vs diffusers (tuned, as shipped) at matched size; FLOP utilisation; memory
sampling          sampling images/s, ours vs diffusers' schedulers; DDIM-25 vs DDPM-1000
eval_cost         one full evaluation split by stage, and its share of the quick preset's time
ddim_steps        a run's checkpoints read with several DDIM step counts: how eval.ddim_steps is chosen
stream            training throughput with a never-reading socket client / a follow() viewer
time_to_c         wall time to phases B and C of presets/quick.toml, from events.jsonl
gpu.sh            the paper-size model on one CUDA GPU (bf16, channels_last, torch.compile)
run_all.sh        all of the above in full mode, in sequence
"""
