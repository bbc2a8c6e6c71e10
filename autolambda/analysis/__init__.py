"""From trials to an answer about alpha: trial records, the joint curve fit and its
intervals, the summary and verdict, and the report."""
