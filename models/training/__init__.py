"""HandNet training: stages, augmentation, the loop (DDP-ready), records and presets; CLI in models/train.py."""
