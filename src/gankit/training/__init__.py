"""gankit.training"""
