"""init() raises: ERR_2200."""


def init():
    print("loading the model")
    raise RuntimeError("model file is corrupt")


def run(raw_data):
    return raw_data
