"""speechunits.units"""
