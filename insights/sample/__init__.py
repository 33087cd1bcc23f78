"""The sample scoring script `insights demo` serves (score.py), kept as a file to copy, not import."""
