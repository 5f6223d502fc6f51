"""Numerical solvers that compute, or independently check, what :mod:`atf_lite.theory` states.

Modules
-------
solution          ``JointSolution``, the result of the brute-force joint solvers
joint             brute-force solution of (AKL) over dense ``Γ``; comparison with Theorem 1
joint_structured  brute force over factorised diagonal, group and Kronecker transformations
alternating       ``min Ω̃(θ) s.t. Φθ = y`` for structured ``Ω̃`` by alternating minimisation
convex            minimum-ℓ1 and minimum-nuclear-norm interpolation (the convex baselines)

The minimum-norm interpolator itself is :func:`atf_lite.linalg.min_norm_interpolator`.
"""
