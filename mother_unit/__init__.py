"""mother_unit"""
