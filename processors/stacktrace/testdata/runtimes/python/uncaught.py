"""An uncaught exception: the interpreter prints the traceback on stderr."""
import atexit
import json

atexit.register(lambda: print("INFO after crash", flush=True))


def load(text):
    return json.loads(text)


print("INFO before crash", flush=True)
load("{not json")
