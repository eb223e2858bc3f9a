"""Evaluation metrics: pure functions of arrays (no training state). docs/metrics.md lists
each formula and its source.

  ssim.py       SSIM, MS-SSIM (tf.image-compatible, differentiable)
  fid.py        Frechet distance, streaming feature statistics, FID sample-size study
  inception.py  FID Inception-v3 (Flax) and pytorch-fid weight conversion
  features.py   any apply function -> batched feature extractor
  knn.py        k nearest training images and neighbour grids (memorisation check)
  diversity.py  pairwise MS-SSIM, successive-batch FID, class coverage
  codes.py      InfoGAN categorical-code accuracy (Hungarian matching)
  accuracy.py   classification accuracy, overall and per class

Submodules are imported explicitly (``from ganjax.metrics import fid``) so that importing
one never loads the others.
"""
