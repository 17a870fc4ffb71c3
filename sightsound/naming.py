"""TF.js names and Python names: one mapping for layer options, model-method options, losses and class names.

TF.js spells options in camelCase and passes them as one config object
(``model.fit(xs, ys, {epochs: 10, batchSize: 320})``); Python spells them as
snake_case keywords. sightsound accepts both everywhere through the functions
here.

>>> snake_case("validationSplit"), snake_case("MaxPooling2D"), camel_case("mean_squared_error")
('validation_split', 'max_pooling2d', 'meanSquaredError')
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Mapping

_WORD = re.compile(r"(.)([A-Z][a-z0-9]+)")
_HUMP = re.compile(r"([a-z])([A-Z])")


def snake_case(name: str) -> str:
    """TF.js's ``toSnakeCase``: ``batchSize`` -> ``batch_size``, ``Conv2D`` -> ``conv2d``."""
    return _HUMP.sub(r"\1_\2", _WORD.sub(r"\1_\2", name)).lower()


def camel_case(name: str) -> str:
    """TF.js's ``toCamelCase``: ``mean_squared_error`` -> ``meanSquaredError``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def python_options(options: Mapping) -> dict:
    """``{"kernelSize": 3}`` -> ``{"kernel_size": 3}``; snake_case keys pass unchanged."""
    return {snake_case(str(key)): value for key, value in options.items()}


def accepts_tfjs_options(data_args: int):
    """Let a method also take TF.js's call style: one config dict after its ``data_args`` data arguments
    (``fit(x, y, {"epochs": 10})``), and camelCase keywords (``batchSize=320``).

    Unknown options raise :class:`TypeError` naming the option and the accepted ones.
    """

    def decorate(method):
        signature = inspect.signature(method)
        accepted = [name for name, p in signature.parameters.items()
                    if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)][data_args:]

        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            given = dict(kwargs)
            if len(args) == data_args + 1 and isinstance(args[data_args], Mapping):
                config = {str(key): value for key, value in args[data_args].items()}
                both = sorted(set(map(snake_case, config)) & set(map(snake_case, kwargs)))
                if both:
                    raise TypeError(f"{method.__name__}(): {', '.join(both)} given both in the config dict "
                                    f"and as keyword")
                args, given = args[:data_args], {**config, **kwargs}
            options = python_options(given)
            if len(options) < len(given):
                raise TypeError(f"{method.__name__}(): an option is given twice, in camelCase and in snake_case")
            unknown = sorted(key for key in given if snake_case(key) not in accepted)
            if unknown:
                names = ", ".join(f"{name} ({camel_case(name)})" if camel_case(name) != name else name
                                  for name in accepted)
                raise TypeError(f"{method.__name__}() got unknown option{'s' if len(unknown) > 1 else ''} "
                                f"{', '.join(map(repr, unknown))}; accepted: {names}")
            return method(self, *args, **options)

        return wrapper

    return decorate
