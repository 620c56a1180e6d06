<?php
// A caught exception logged the common PHP way: error_log() with the exception as a
// string (Throwable::__toString), its previous exception included.
fwrite(STDOUT, "INFO before crash\n");

function connect(string $dsn): void
{
    throw new RuntimeException("connection refused: $dsn");
}

function charge(int $cents): void
{
    try {
        connect("db:5432");
    } catch (RuntimeException $e) {
        throw new LogicException("charge of $cents failed", 0, $e);
    }
}

try {
    charge(1250);
} catch (Throwable $e) {
    error_log("payment failed: " . $e);
}
