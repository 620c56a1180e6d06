// An uncaught TypeError: Node prints the throwing source line, the stack and its version.
'use strict';

function total(order) {
  return order.items.length;
}

console.log('INFO before crash');
total({});
