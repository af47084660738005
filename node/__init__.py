"""vrm-node: the customer's side of customer relationships."""

__version__ = "0.1.0"
