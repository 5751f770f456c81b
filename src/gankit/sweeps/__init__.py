"""gankit.sweeps"""
