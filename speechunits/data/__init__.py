"""speechunits.data"""
