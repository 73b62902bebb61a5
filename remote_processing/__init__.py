"""remote_processing"""
