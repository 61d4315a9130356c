"""linkbert: LinkBERT pretraining data (Apache Beam), DeepSpeed pretraining and evaluation.

The product's areas install as subpackages of this namespace: ``linkbert.pipeline``,
``linkbert.train``, ``linkbert.eval`` and ``linkbert.schemas``.
"""

__version__ = "0.1.0"
