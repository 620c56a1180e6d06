"""An uncaught ExceptionGroup (Python 3.11), with a nested group."""
import atexit

atexit.register(lambda: print("INFO after crash", flush=True))


def validate():
    errors = [ValueError("price must be positive"), TypeError("sku must be a string")]
    try:
        raise ExceptionGroup("inner checks", [KeyError("warehouse")])
    except ExceptionGroup as g:
        errors.append(g)
    raise ExceptionGroup("order 42 is invalid", errors)


print("INFO before crash", flush=True)
validate()
