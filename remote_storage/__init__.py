"""remote_storage"""
