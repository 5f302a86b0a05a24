"""speechunits.eval"""
