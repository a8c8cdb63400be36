"""Packaged literature data (TOML), each value with its source and evidence tag."""
