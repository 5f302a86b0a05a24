"""speechunits.models"""
