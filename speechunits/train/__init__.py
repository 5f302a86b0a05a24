"""speechunits.train"""
