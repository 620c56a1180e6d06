<?php
// An uncaught TypeError raised by the engine, without a previous exception.
function total(array $items): int {
    return array_sum($items);
}

fwrite(STDOUT, "INFO before crash\n");
total("not an array");
