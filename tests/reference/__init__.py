"""Independent float64 NumPy reference implementations used as test oracles."""
