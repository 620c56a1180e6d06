// An uncaught Error with a cause (ES2022): Node prints the cause in a [cause] block.
'use strict';

function connect() {
  const err = new Error('connect ECONNREFUSED 127.0.0.1:5432');
  err.code = 'ECONNREFUSED';
  throw err;
}

function query() {
  try {
    connect();
  } catch (e) {
    throw new Error('query failed for order 42', { cause: e });
  }
}

console.log('INFO before crash');
query();
