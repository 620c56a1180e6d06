"""logging.exception: an ERROR header line followed by the traceback, then the program
goes on logging."""
import logging

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("shop")


def total(items):
    return sum(i["price"] for i in items)


print("INFO before crash", flush=True)
log.info("started")
try:
    total([{"price": 3}, {"cost": 4}])
except KeyError:
    log.exception("cannot total order 42")
log.warning("retrying order 42")
