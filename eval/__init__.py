"""Evaluation of LinkBERT encoders: intrinsic MLM / DRP on held-out instance shards."""
