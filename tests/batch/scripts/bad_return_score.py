def init():
    pass


def run(mini_batch):
    return {"files": mini_batch}
