"""init() fails, as a missing model file does (the CrashLoopBackOff case)."""


def init():
    print("loading model from /nowhere/model.pkl")
    raise FileNotFoundError("model file /nowhere/model.pkl is missing")


def run(raw_data):
    return raw_data
