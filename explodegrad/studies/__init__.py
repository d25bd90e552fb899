"""Studies: one file per chapter experiment, plus ``common`` (architecture type, default inits,
labels, the data and dtype policy).
"""
