"""gankit.losses"""
