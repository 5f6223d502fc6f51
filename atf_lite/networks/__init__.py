"""Torch networks seen through their tangent features.

Modules
-------
mlp              MLPs with the paper's initialisations
cnn              small convolutional networks with the same initialisations
functional       parameter dicts, model outputs and the linearised model
tangent          tangent features and tangent kernels (the empirical NTK), per-layer signals
path_averaging   path-averaged tangent features of a trained network, quadrature rules
kernels          per-layer adapted kernels and weight-change spectra of trained MLPs
conv_tangent     tangent features and (adapted) kernels of CNNs from per-position factors
conv_path_averaging  path-averaged tangent features of CNNs
conv_linearized  the linearised CNN, layer by layer in forward mode
linear           gradient descent on the linearised network; distance from the linearisation
training         minibatch SGD with a cosine schedule (regression)
feature_models   fixed, adaptive and full tangent-feature models of one initial network
classifier       classification training with early stopping on a validation split
"""
