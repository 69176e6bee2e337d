"""Plots of alignments and model internals (see issue 4)."""
