// An error caught and logged with console.error, the way most Node services log.
console.log('INFO before crash');

function connect() {
  throw new Error('connection refused for order 42', { cause: new RangeError('port 5432 closed') });
}

try {
  connect();
} catch (err) {
  console.error('ERROR query failed', err);
}
