"""ppg: is a photoplethysmogram informative enough to predict a label?

Data and signal layer (records, dataset loaders, cleaning, beats, windows, features, a
simulator) and the informativeness tools of Mehta et al. (Sci. Rep. 2024): multi-valued
mapping, k-NN mutual information and the information fraction, and a leakage audit.
"""

from ppg.information import information_fraction, kl_entropy, ksg_mutual_information
from ppg.mvm import multivalued_mapping
from ppg.windows import load_windows

__all__ = [
    "information_fraction",
    "kl_entropy",
    "ksg_mutual_information",
    "load_windows",
    "multivalued_mapping",
]
