"""course_lib: the library behind *Image Generation from First Principles*.

Four generative models of images end to end (data → model → training → sampling →
evaluation): the Gaussian mixture (:mod:`course_lib.gmm`), the Markov random field
(:mod:`course_lib.mrf`), and, in later chapters, the GAN and the VAE.
"""

from ._core import get_device, seed_everything

__all__ = ["get_device", "seed_everything", "__version__"]
__version__ = "0.1.0"
