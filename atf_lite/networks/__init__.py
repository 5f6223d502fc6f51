"""Torch networks seen through their tangent features.

Modules
-------
mlp              MLPs with the paper's initialisations
functional       parameter dicts, model outputs and the linearised model
tangent          tangent features and tangent kernels (the empirical NTK), per-layer signals
path_averaging   path-averaged tangent features of a trained network, quadrature rules
kernels          per-layer adapted kernels and weight-change spectra of trained MLPs
linear           gradient descent on the linearised network; distance from the linearisation
training         minibatch SGD with a cosine schedule (regression)
feature_models   fixed, adaptive and full tangent-feature models of one initial network
classifier       classification training with early stopping on a validation split
"""
