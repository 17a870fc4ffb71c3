"""JSON exactly as JavaScript's ``JSON.stringify`` writes it, so saved bytes match TF.js's."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from numbers import Integral, Real
from typing import Any

import numpy as np


def js_number(value: float) -> str:
    """A number as JavaScript's ``String(x)`` / ``JSON.stringify`` writes it.

    >>> [js_number(v) for v in (1.0, 0.25, 1e-07, 1e21, 123456789.0, -0.0)]
    ['1', '0.25', '1e-7', '1e+21', '123456789', '0']
    """
    if isinstance(value, Integral):
        value = int(value)
        if abs(value) < 10**21:
            return str(value)
        value = float(value)
    value = float(value)
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    decimal = Decimal(repr(abs(value))).as_tuple()  # shortest round-trip digits, as JS uses
    all_digits = "".join(map(str, decimal.digits))
    digits = all_digits.rstrip("0")
    n = len(all_digits) + decimal.exponent  # the decimal point sits after n digits
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + text


def js_json(value: Any) -> str:
    """``JSON.stringify(value)``: compact, keys in insertion order, JS numbers.

    >>> js_json({"rate": 0.5, "eps": 1e-7, "n": [1, 2.0], "s": "é"})
    '{"rate":0.5,"eps":1e-7,"n":[1,2],"s":"é"}'
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, np.generic):
        return js_json(value.item())
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (Integral, Real)):
        return js_number(value)
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {key!r}")
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{js_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(js_json(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r:.80}")
