"""gankit.metrics"""
