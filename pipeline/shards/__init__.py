"""Parquet shards: balanced, shuffled writing and the run manifest."""
