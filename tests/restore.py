"""Shared by the in-process and multi-process equality tests: the final parameters of a trained workdir."""
from jaxml import data
from jaxml.train import loop


def final_params(workdir, config):
    """(params, model_state) of the run ``config`` trained in ``workdir``, fetched to the host."""
    _, driver, state = loop.restore_trained(config, workdir, data.build(config).input_shape)
    state = driver.fetch(state)
    return state.params, state.model_state
