"""An uncaught exception raised from another while handling a third: both kinds of
chaining ("direct cause" and "during handling")."""
import atexit

atexit.register(lambda: print("INFO after crash", flush=True))


class PaymentError(Exception):
    pass


def charge(amount):
    try:
        {}["card"]
    except KeyError:
        int("x" + str(amount))


def checkout():
    try:
        charge(42)
    except ValueError as e:
        raise PaymentError("checkout failed for order 42") from e


print("INFO before crash", flush=True)
checkout()
