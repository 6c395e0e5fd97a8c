"""The exception for a bad evaluation input (a checkpoint or answers file); its message says what to fix."""


class EvalError(ValueError):
    pass
