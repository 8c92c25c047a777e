"""Meshes, shardings and multi-device helpers."""

from d2ljax.parallel.mesh import batch_sharding, make_mesh, replicated

__all__ = ["batch_sharding", "make_mesh", "replicated"]
