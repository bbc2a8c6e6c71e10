"""The question's vocabulary: how lambda scales with size, the search space, the choices and
their defaults, and the trial-record contract (``trials``: what is stored on a study and its
trials, the states, the readers).

Pure Python and NumPy-free where it can be: nothing here trains or logs.
"""
