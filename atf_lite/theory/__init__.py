"""The mathematics of adaptive tangent features, in closed form (float64 NumPy, no torch).

Modules
-------
penalties    spectral penalties ``ω``, their validation, ``⊕`` and ``Ω(Γ) = Σ ω(σ_i(Γ))``
effective    the effective penalty ``ω̃`` and the adaptation scale ``s``
theorem1     Theorem 1's solution of the joint problem (AKL)
structured   closed forms of diagonal, group and Kronecker (per-layer) transformations
"""
