"""linkbert's Apache Beam pipeline: dump files to documents, edges, segments and pretraining instances."""
