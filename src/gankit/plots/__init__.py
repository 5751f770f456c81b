"""gankit.plots"""
