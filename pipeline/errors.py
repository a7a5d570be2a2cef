"""The one error type for bad user input, so every step can refuse it the same way (exit status 2)."""


class InputError(ValueError):
    """Bad user input: a parameter value or a file. The message names it and says what is allowed."""


def bad_parameter(name: str, value, allowed: str) -> InputError:
    """An InputError whose message names the parameter, the value given and the allowed values."""
    return InputError(f"parameter '{name}': got {value!r}; allowed: {allowed}")
