"""gankit.exploration"""
