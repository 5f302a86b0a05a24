"""speechunits.corpora"""
