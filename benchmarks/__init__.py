"""Benchmarks of vrm-node's message layer: `python -m benchmarks [--quick] [--gate] [--json PATH]`.

Every figure is measured in the same run, on the same signed envelopes, against a baseline measured
alongside it (pyca/cryptography for signatures, the pure-Python reference for the codec), so the
ratios hold on any machine; the absolute times are for information.
"""
