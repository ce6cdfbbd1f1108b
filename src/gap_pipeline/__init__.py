"""Gradient Ascent Post-training (Yoon et al., ACL 2023) as a cached DVC pipeline.

Modules, one concern each: ``params`` (the params.yaml schema), ``models`` (resolving and loading
models), ``corpora`` (reading and sampling texts), ``ascent`` (the gradient-ascent loop), ``runtime``
(device, dtype, seeds), ``outputs`` (atomic writes).
"""

__version__ = "0.1.0"
