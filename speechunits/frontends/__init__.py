"""speechunits.frontends"""
