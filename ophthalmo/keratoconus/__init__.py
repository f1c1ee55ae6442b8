"""Keratoconus screening: corneal topography, clinical indices, heatmaps and a dual-head CNN."""
