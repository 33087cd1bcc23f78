def init():
    raise FileNotFoundError("model.pkl not found")


def run(mini_batch):
    return mini_batch
