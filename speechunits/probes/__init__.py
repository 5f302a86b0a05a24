"""speechunits.probes"""
