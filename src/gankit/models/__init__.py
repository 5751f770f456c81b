"""gankit.models"""
