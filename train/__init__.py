"""LinkBERT pretraining with DeepSpeed: model, masking, streaming loader, loop, checkpoints, export."""
