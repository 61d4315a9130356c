"""Pretraining instances: tokenizing, segmenting, pairing segments as contiguous / random / linked."""
