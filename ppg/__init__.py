"""ppg: is a photoplethysmogram informative enough to predict a label?

Data and signal layer (records, dataset loaders, cleaning, beats, windows, features, a
simulator) and the informativeness tools of Mehta et al. (Sci. Rep. 2024): multi-valued
mapping, k-NN mutual information and the information fraction, and a leakage audit.
"""
