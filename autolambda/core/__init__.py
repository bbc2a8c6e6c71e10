"""The question's vocabulary: how lambda scales with size, the search space, trial states.

Pure Python and NumPy-free where it can be: nothing here trains or logs.
"""
