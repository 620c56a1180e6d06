// A cause thrown from the same call path as its wrapper: Node abbreviates the shared
// frames as "... N lines matching cause stack trace ...".
'use strict';

function step(n) {
  if (n === 0) {
    let inner;
    try {
      throw new RangeError('retry budget exhausted');
    } catch (e) {
      inner = e;
    }
    throw new Error('job 42 failed', { cause: inner });
  }
  step(n - 1);
}

console.log('INFO before crash');
step(3);
