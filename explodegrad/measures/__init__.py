"""Measures: one named quantity per file (gsc, domain, dilution, paths, taylor), each a function of
(network, batch) returning a frozen result.
"""
