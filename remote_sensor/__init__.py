"""remote_sensor"""
