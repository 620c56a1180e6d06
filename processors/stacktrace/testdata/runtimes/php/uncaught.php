<?php
// An uncaught exception with a previous one. Run with
// php -d display_errors=stderr -d log_errors=0 uncaught.php, as a container's PHP CLI.
function connect(string $dsn): void {
    throw new RuntimeException("connection refused: $dsn");
}

function query(int $order): void {
    try {
        connect("pgsql:host=10.0.0.7");
    } catch (RuntimeException $e) {
        throw new LogicException("query failed for order $order", 3, $e);
    }
}

fwrite(STDOUT, "INFO before crash\n");
query(42);
