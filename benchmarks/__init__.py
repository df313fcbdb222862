"""Benchmarks: minidl against the bare-GEMM floor and, when installed, PyTorch (see README.md).

Run as modules, e.g. ``python -m benchmarks.mlp``; nothing here is collected by pytest.
"""
