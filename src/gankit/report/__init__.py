"""gankit.report"""
