"""atf_lite: adaptive tangent features of neural networks, in small reusable solvers.

Modules
-------
data             digits / MNIST loaders with the paper's preprocessing, random-feature targets
tangent          tangent features, tangent kernels (NTK), linearisation, path-averaged features
linear           kernel regression and gradient descent on the linearised network
penalties        spectral penalties and their effective (sub-quadratic) penalties
adaptive         minimum-norm interpolation, Theorem 1's closed form, a brute-force joint solver
structured       diagonal, group and Kronecker (per-layer) structured transformations
network_kernels  per-layer adapted kernels and weight-change spectra of trained networks
alignment        label kernels and kernel alignment
models           MLPs, their training loop, fixed / adaptive / full tangent-feature models
experiments      end-to-end experiments with on-disk caching (also ``python -m atf_lite``)
plotting         the figure style shared by the book
"""

__version__ = "0.1.0"
