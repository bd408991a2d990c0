"""The pipeline's steps: the logic behind each state of the state machine.

``state`` holds the models of the execution state the steps pass to each other; each other
module is the work of one or a few states (the handlers in :mod:`mixtune.handlers` only parse
events into these models and call one function here).
"""
